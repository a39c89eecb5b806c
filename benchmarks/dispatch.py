"""Dispatcher drain benchmark: the consumer side's cost per fire, alone.

Queues `--fires` fires of distinct jobs in a fresh database (the rows the timer engine
would write), then drains them through the local dispatcher and its no-op consumer
plugin in one process (reading rows, parsing and validating, overlap markers, run
history, done marks, dequeue, commits). Prints one JSON object with fires, cpu_s,
cpu_us_per_fire and wall_s.

CPU time on a shared machine moves by tens of percent from one hour to the next, which
hides changes of a few percent. `--instructions` counts machine instructions instead
(Valgrind's callgrind, when installed): it drains two queue sizes under callgrind and
reports the difference per fire (`instructions_per_fire`), which moves by a few
percent from run to run whatever the machine is doing (compare runs made side by
side); a run takes about a minute. `--history K` first stores K earlier runs per job and
their done marks, as in a system that has been up for a while. `--partitions K` drains
partition 0 of K dispatch partitions (its queue and its history in files of their own,
the fires of its jobs only), as each dispatcher process does with
`SCHEDULER_DISPATCHER_PROCESSES=K`. `--ids shuffled` gives the jobs ids in no particular
order (as `benchmarks/engine.py` does by default); the default, `ordered`, numbers them
in queue order. `--warm` measures a dispatcher that has been up: it drains the queued
fires first, unmeasured, then each job's next fire (its done-mark look-ups and page
caches as in a later period).

    python benchmarks/dispatch.py --fires 20000
    python benchmarks/dispatch.py --instructions
    python benchmarks/dispatch.py --instructions --history 20   # a grown run table
    python benchmarks/dispatch.py --fires 100000 --history 4 --partitions 2
    python benchmarks/dispatch.py --fires 150000 --history 4 --partitions 2 --warm
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from engine import _dispatcher, _jobs, count_instructions

from serverless_scheduler_common.coldstart import tune_for_throughput
from serverless_scheduler_common.events import JobFired, fire_key
from serverless_scheduler_common.ports import fire_shard
from serverless_scheduler_common.runs import Run
from serverless_scheduler_common.runtime.sqlite import _ts
from serverless_scheduler_schedulers.sync import SnapshotJob


def queue_fires(
    data_dir: Path, fires: int, history: int = 0, partitions: int = 1, ids: str = "ordered"
) -> str:
    """Queue `fires` fires of distinct jobs, as the engine renders them, after storing
    `history` earlier runs of each job and their done marks (the history of a system
    that has been up);
    with `partitions` > 1, fires of partition 0's jobs in its queue file.

    Returns the start-time text from which on runs are the drain's (`check_runs`)."""
    dispatcher = _dispatcher(data_dir, None, (0, partitions))
    t0 = time.time()
    when = datetime.fromtimestamp(t0, UTC)
    jobs = partition_jobs(fires, partitions, ids, t0)
    runs, ledger = dispatcher.runtime.runs, dispatcher.runtime.ledger
    for back in range(history, 0, -1):
        earlier = when - timedelta(seconds=10 * back)
        for start in range(0, len(jobs), 1000):
            ledger.mark_done_many(
                [fire_key(job.job_id, earlier) for job in jobs[start : start + 1000]]
            )
            runs.record_many(
                [
                    (
                        job.owner_id,
                        Run(
                            job_id=job.job_id,
                            fire_id=f"{job.job_id}@{earlier.isoformat()}",
                            scheduled_time=earlier,
                            started_at=earlier,
                            finished_at=earlier,
                            status="ok",
                        ),
                    )
                    for job in jobs[start : start + 1000]
                ]
            )
    dispatcher.queue.add_many(_fires(jobs, when))
    return _ts(when)


def partition_jobs(fires: int, partitions: int, ids: str, t0: float) -> list[SnapshotJob]:
    """`fires` benchmark jobs of partition 0 of `partitions` (the same ids every call)."""
    jobs = [
        job
        for job in _jobs(fires * partitions * 2, 10.0, t0, ids=ids)
        if fire_shard(job.job_id) % partitions == 0
    ][:fires]
    if len(jobs) < fires:
        raise SystemExit(f"only {len(jobs)} jobs of partition 0 among the ids generated")
    return jobs


def _fires(jobs: Sequence[SnapshotJob], when: datetime) -> list[JobFired]:
    """One fire of each job at `when`, as the engine renders it."""
    return [
        JobFired(
            job_id=job.job_id,
            owner_id=job.owner_id,
            job_type=job.job_type,
            job=job.model_dump(mode="json"),
            scheduled_time=when,
        )
        for job in jobs
    ]


def check_runs(data_dir: Path, fires: int, since: str, partitions: int = 1) -> None:
    """Every drained fire left one run (earlier runs past the retention of 100 per job
    are trimmed as the drain goes, so only runs started since `since` are counted).
    Outside the measured process: the count reads the whole table."""
    dispatcher = _dispatcher(data_dir, None, (0, partitions))
    query = dispatcher.runtime.runs._query
    runs = int(str(query("SELECT count(*) FROM runs WHERE started_at >= ?", (since,))[0][0]))
    if runs != fires:
        raise SystemExit(f"{runs} runs stored for {fires} fires")


def drain(
    data_dir: Path,
    fires: int,
    history: int = 0,
    partitions: int = 1,
    *,
    warm: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """Run every queued fire; CPU and wall time of the drain alone. `warm=(since,
    ids)`: drain those first, unmeasured, then queue each job's next fire and measure
    the drain of those (a dispatcher that has been up for a period)."""
    dispatcher = _dispatcher(data_dir, None, (0, partitions))
    tune_for_throughput()
    if warm is not None:
        dispatcher.start()
        if not dispatcher.wait_idle(timeout=3600):
            raise SystemExit("the dispatcher did not finish the first period")
        since, ids = warm
        when = datetime.fromisoformat(since) + timedelta(seconds=10)
        jobs = partition_jobs(fires, partitions, ids, time.time())
        dispatcher.queue.add_many(_fires(jobs, when))
    cpu0, wall0 = time.process_time(), time.perf_counter()
    if warm is None:
        dispatcher.start()
    else:
        dispatcher.load_queued()
    if not dispatcher.wait_idle(timeout=3600):
        raise SystemExit("the dispatcher did not finish the queue")
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    dispatcher.stop()
    if dispatcher.queue.count():
        raise SystemExit("fires are left in the queue")
    return {
        "fires": fires,
        "history": history,
        "partitions": partitions,
        "cpu_s": round(cpu, 3),
        "cpu_us_per_fire": round(1e6 * cpu / fires, 2),
        "wall_s": round(wall, 3),
    }


def _instructions(fires: int, workdir: Path, history: int, partitions: int, ids: str) -> int:
    """Instructions of one process that drains `fires` queued fires (callgrind)."""
    data_dir = workdir / f"q{fires}"
    since = queue_fires(data_dir, fires, history, partitions, ids)
    args = ["--drain-only", str(data_dir), "--fires", str(fires), "--history", str(history)]
    args += ["--partitions", str(partitions)]
    instructions = count_instructions(__file__, args)
    check_runs(data_dir, fires, since, partitions)
    return instructions


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fires", type=int, default=20_000)
    parser.add_argument(
        "--instructions", action="store_true", help="count instructions per fire (callgrind)"
    )
    parser.add_argument(
        "--history",
        type=int,
        default=0,
        help="earlier runs stored per job before the drain (a run table that has grown)",
    )
    parser.add_argument(
        "--partitions",
        type=int,
        default=1,
        help="drain partition 0 of this many dispatch partitions (files of its own)",
    )
    parser.add_argument(
        "--ids",
        choices=["ordered", "shuffled"],
        default="ordered",
        help="job ids in queue order (default) or in no particular order",
    )
    parser.add_argument(
        "--warm",
        action="store_true",
        help="measure the second period: the dispatcher has run each job's fire before",
    )
    parser.add_argument("--drain-only", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.warm and args.instructions:
        parser.error("--warm measures CPU time; --instructions counts the whole process")
    logging.basicConfig(level=logging.WARNING)
    if args.drain_only is not None:
        drain(args.drain_only, args.fires, args.history, args.partitions)
        return 0
    if args.instructions:
        small, large = 500, 2500
        with tempfile.TemporaryDirectory() as tmp:
            print(f"counting {small} and {large} fires under callgrind...", file=sys.stderr)
            low = _instructions(small, Path(tmp), args.history, args.partitions, args.ids)
            high = _instructions(large, Path(tmp), args.history, args.partitions, args.ids)
        result = {
            "fires": [small, large],
            "history": args.history,
            "partitions": args.partitions,
            "ids": args.ids,
            "instructions_per_fire": (high - low) // (large - small),
        }
    else:
        with tempfile.TemporaryDirectory() as tmp:
            since = queue_fires(Path(tmp), args.fires, args.history, args.partitions, args.ids)
            warm = (since, args.ids) if args.warm else None
            result = drain(Path(tmp), args.fires, args.history, args.partitions, warm=warm)
            result["ids"], result["warm"] = args.ids, args.warm
            periods = 2 if args.warm else 1
            check_runs(Path(tmp), periods * args.fires, since, args.partitions)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
