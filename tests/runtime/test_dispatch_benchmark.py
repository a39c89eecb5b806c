"""The dispatcher drain benchmark runs end to end (its figures are not asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_drain_benchmark_runs_every_queued_fire_and_prints_one_json_object() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "dispatch.py"), "--fires", "300"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result = json.loads(proc.stdout)
    # The script exits with an error unless the history holds one run per queued fire.
    assert result["fires"] == 300
    assert result["cpu_s"] > 0
    assert result["cpu_us_per_fire"] > 0
