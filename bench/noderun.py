"""Run a benchmark's JavaScript side under ``node`` and read the rates it prints as JSON."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path


def node_rates(script: Path, *args: object) -> dict[str, float]:
    """The ``{name: operations per second}`` that ``node script args...`` prints."""
    out = subprocess.run(
        ["node", str(script), *map(str, args)], capture_output=True, text=True, check=True
    ).stdout
    rates: dict[str, float] = json.loads(out)
    return rates
