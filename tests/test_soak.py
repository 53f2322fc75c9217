"""One minute of mixed traffic against `devicebucket serve` (bench/soak.py runs it longer):
no failed request, no lost increment, and server memory that does not keep growing."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .conftest import ROOT


@pytest.mark.slow
def test_a_minute_of_mixed_traffic_leaks_nothing() -> None:
    options = ["--seconds", "60", "--window", "10", "--clients", "8", "--json"]
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "soak.py"), *options],
        capture_output=True,
        text=True,
        timeout=240,
    )
    report = json.loads(result.stdout)
    assert report["requests"] > 1000
    assert report["failed"] == 0
    assert report["buckets_with_lost_increments"] == 0
    windows = report["windows"]
    assert len(windows) >= 4
    # Memory is flat once warm: from the second window on it grows by less than 20 MB.
    assert windows[-1]["rss_mb"] - windows[1]["rss_mb"] < 20, windows
