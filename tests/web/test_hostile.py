"""Hostile clients against a real ``serve`` (``bench/hostile.py`` runs the attacks and
measures them): huge forms cost the server no memory and no disk, and one device's broken
Unicode never fails another device's writes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ..conftest import ROOT


@pytest.mark.slow
def test_huge_forms_and_broken_unicode_hurt_no_one() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "hostile.py"), "--mb", "200", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["answers"] == [
        "HTTP/1.1 413 Request Entity Too Large",
        "HTTP/1.1 413 Request Entity Too Large",
        "HTTP/1.1 415 Unsupported Media Type",
    ]
    before, after = report["peak_rss_mb"]
    assert after - before < 20, report  # three 200 MB bodies, none of them read
    assert report["spooled_mb"] == 0  # not even an unnamed temporary file
    assert report["dev_b"] == {"200": 16 * 60}
    assert report["dev_b_has_every_write"]
    assert report["dev_a"] == {"422": 120}
    assert report["dev_a_version"] == '"0"'
    assert report["server_errors_in_metrics"] == []
