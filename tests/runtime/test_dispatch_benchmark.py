"""The dispatcher drain benchmark runs end to end (its figures are not asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def _bench(script: str, *args: str, timeout: float = 120) -> dict[str, Any]:
    """The one JSON object `benchmarks/<script> *args` prints (it must exit 0)."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=True,
    )
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def test_the_drain_benchmark_runs_every_queued_fire_and_prints_one_json_object() -> None:
    result = _bench("dispatch.py", "--fires", "300")
    # The script exits with an error unless the history holds one run per queued fire.
    assert result["fires"] == 300
    assert result["cpu_s"] > 0
    assert result["cpu_us_per_fire"] > 0


def test_the_drain_benchmark_drains_one_partition_of_several() -> None:
    result = _bench("dispatch.py", "--fires", "300", "--partitions", "2", "--ids", "shuffled")
    # Exits with an error unless partition 0's history file holds a run per fire.
    assert (result["fires"], result["partitions"], result["ids"]) == (300, 2, "shuffled")
    assert result["cpu_us_per_fire"] > 0


def test_the_engine_benchmark_prints_every_documented_field() -> None:
    args = ("--jobs", "200", "--period", "1", "--duration", "1", "--warmup", "1")
    result = _bench("engine.py", *args, timeout=180)
    documented = [
        "jobs",
        "period_s",
        "expected_fires_per_s",
        "fires_per_s",
        "handed_off_per_s",
        "lateness_p50_ms",
        "lateness_p99_ms",
        "missed",
        "add_jobs_s",
        "lead_spare_s",
        "cpu_s",
        "cpu_us_per_fire",
        "rss_mb",
        "consumer_fires_per_s",
        "consumer_lateness_p99_ms",
        "consumer_missed",
        "publish_waited_s",
    ]
    assert [name for name in documented if name not in result] == []
    assert result["jobs"] == 200 and result["expected_fires_per_s"] == 200
    # 200 jobs a second for one second: fires were handed off and run (how late they
    # were is the benchmark's business, not this test's).
    assert result["handed_off_per_s"] > 0 and result["consumer_fires_per_s"] > 0
    assert result["cpu_s"] > 0 and result["rss_mb"] > 0
    assert result["publish_waited_s"] == 0  # 200 fires never fill a 100,000-fire queue
    # 200 jobs are armed well within the 2 s lead: the first fires found them all.
    assert 0 < result["lead_spare_s"] <= 2


def test_the_engine_benchmark_can_show_each_seconds_hand_off() -> None:
    args = ("--jobs", "100", "--period", "1", "--duration", "1", "--warmup", "1", "--lead", "0")
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "engine.py"), *args, "--timeline"],
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    )
    lines = [line for line in out.stderr.splitlines() if line.startswith("second")]
    handed = [int(line.split("handed off")[1].split(",")[0]) for line in lines]
    assert len(lines) >= 2 and sum(handed) >= 100  # every job fired at least once
    # The dispatcher process's queued rows, sampled once a second (never negative:
    # -1 would mean no dispatcher to ask).
    waiting = [int(line.split("waiting")[1]) for line in lines]
    assert all(count >= 0 for count in waiting)
    assert json.loads(out.stdout)["lead_spare_s"] <= 0  # fired while being added


def test_the_floor_benchmark_runs_every_fire_inline_and_splits_its_cost() -> None:
    result = _bench("engine.py", "--floor", "--jobs", "300", "--period", "1")
    # The script exits with an error unless every fire ran once and left one run.
    assert result["jobs"] == 300 and result["fires"] >= 3 * 300
    parts = ["engine", "parse", "handle", "commit"]
    assert all(result[f"{part}_us_per_fire"] > 0 for part in parts)
    total = sum(result[f"{part}_us_per_fire"] for part in parts)
    assert abs(total - result["cpu_us_per_fire"]) < 0.05
    assert abs(result["cores_at_50k"] - result["cpu_us_per_fire"] * 0.05) <= 0.01
