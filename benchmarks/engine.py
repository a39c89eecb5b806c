"""Local timer engine benchmark: N jobs firing every P seconds for D seconds.

Start times are spread evenly over one period, which begins `--lead` seconds after the
benchmark starts adding the jobs (default N / 12,500, at least 2: about what adding
takes here), so the fires begin once the jobs are stored and armed and the window
measures the steady state, not a bulk import racing the first fires (`--lead 0`
measures that instead; `lead_spare_s` says how much of the lead was left once every job
was armed, negative when the first fires came first). With `--cron EXPRESSION` every job has
that cron expression instead and they fire together, at the top of the minute for
`* * * * *` (cron's usual load); the window then starts 5 s before one of its fire
times, `period_s` is the expression's shortest gap and `expected_fires_per_s` is N
times the fire times inside the window, over D. Prints one JSON object with jobs,
period_s, expected_fires_per_s, fires_per_s, lateness_p50_ms, lateness_p99_ms, missed,
add_jobs_s, lead_spare_s, settle_s, cpu_s, cpu_sys_s, cpu_us_per_fire, rss_mb (peak), rss_loaded_mb
(once every job is armed) and rss_end_mb.

Job ids are unrelated to the firing order by default (`--ids shuffled`: a fixed
permutation of `bench<number>`), as ids the server assigns when jobs are created;
`--ids ordered` numbers them in firing order (the only choice before the fifteenth
round, and a flattering one for anything keyed by job id).

`--publisher` picks what the engine hands its fires to: `process` (default; local
mode's `DispatcherProcess`: durable queue table here, the dispatcher with a no-op
consumer plugin in a child process), `dispatcher` (the same dispatcher in this
process) or `noop` (the engine alone). With `process`, CPU and memory cover both
processes: `cpu_s` adds the child's CPU (`cpu_dispatcher_s`), and `rss_mb` is the sum
of the two peaks (`rss_engine_mb` + `rss_dispatcher_mb`). `--dispatchers K` runs K
dispatcher processes that split the fires by job (their CPU and peaks added up).

Lateness is measured twice: where the engine hands a batch to the publisher
(`lateness_*`, the engine's own delay) and when the no-op consumer starts the fire
(`consumer_lateness_*`: engine, durable queue and worker pool together; with `process`
read from the run history the child wrote). `fires_per_s` counts hand-offs of the fires
scheduled inside the window, `consumer_fires_per_s` the ones the consumer ran.
`handed_off_per_s` counts every hand-off made during the window, whenever its fire was
scheduled: a pipeline that cannot keep up hands off fires from long before the window
(and `fires_per_s` falls towards 0), so this is its throughput. `missed` counts fires
scheduled inside the measured window that never reached the publisher or were skipped by
the catch-up policy; `consumer_missed` those the consumer had not started within
`--drain` seconds after the window. `publish_waited_s` is how long, in the window, the
engine's publishing waited for room in the dispatchers' queue (`max_queued`, their
back-pressure; `null` with `--publisher dispatcher`, whose waits it does not count).
`cpu_us_per_fire` is the CPU of every process involved per fire handed off in the
window. With a dispatcher, the warm-up starts once
the fires queued while the jobs were added are down to 100 ms worth (`settle_s`: how
long that took): the window measures the steady state, not the catch-up after adding N
jobs at once.

`--instructions` counts the engine's own work per fire instead (rendering the fire, the
queue insert, the last-fire bookkeeping) with Valgrind's callgrind: 3,000 jobs with a
1-second period fire in virtual time (no sleeping, no threads; about 200 fires per
queue transaction, as at 10,000 fires/s) over 2 and over 12 periods into the durable
queue table, and the difference of the two totals per extra fire is reported
(`instructions_per_fire`). Unlike CPU time it barely moves with the machine's load.

`--floor` measures the least CPU a fire can cost with this runtime: the engine and the
consumer runtime in one thread, in virtual time, with no hand-off between them (no
queue rows, no second process, no threads); see `inline_floor`.

    python benchmarks/engine.py --jobs 100000 --period 10 --duration 10
    python benchmarks/engine.py --jobs 500000 --period 10 --duration 10 --dispatchers 2
    python benchmarks/engine.py --jobs 500000 --dispatchers 2 --lead 0 --timeline
    python benchmarks/engine.py --jobs 100000 --cron "* * * * *" --duration 60
    python benchmarks/engine.py --publisher noop      # engine alone
    python benchmarks/engine.py --instructions        # engine's instructions per fire
    python benchmarks/engine.py --floor --jobs 100000 # no hand-off: the least per fire
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from serverless_scheduler_common.coldstart import tune_for_throughput
from serverless_scheduler_common.events import JobFired
from serverless_scheduler_common.policy import JobPolicy
from serverless_scheduler_common.ports import RenderedFire
from serverless_scheduler_common.runtime.partitions import (
    PartitionQueue,
    history_files,
    history_path,
)
from serverless_scheduler_common.schedule import CronSchedule, RateSchedule
from serverless_scheduler_schedulers.local_engine import LocalScheduleBackend, TimerEngine
from serverless_scheduler_schedulers.sync import SnapshotJob


class MeasuringPublisher:
    """Records lateness at hand-off, then forwards to the real publisher (if any)."""

    def __init__(self, inner: Any | None, window: tuple[float, float]) -> None:
        self._inner_many = getattr(inner, "publish_many", None)
        self._inner = inner
        self.lateness: list[float] = []
        self.in_window = 0
        self.total = 0
        #: Per wall-clock second: [latest hand-off lateness, fires, fires waiting in
        #: the dispatcher at the second's first hand-off] (`--timeline`).
        self.timeline: dict[int, list[float]] | None = None
        self._backlog = getattr(inner, "backlog", None)
        self._lo, self._hi = window
        self._inner_payloads = getattr(inner, "publish_payloads", None)
        if inner is None or self._inner_payloads is not None:
            # The engine takes the rendered fast path when its publisher offers it.
            self.publish_payloads = self._publish_payloads

    def _count(self, scheduled: Iterable[float], fires: int) -> None:
        """Record the hand-off lateness of the fires scheduled inside the window."""
        now = time.time()
        lo, hi = self._lo, self._hi
        lat = self.lateness
        n = 0
        for ts in scheduled:
            if lo <= ts < hi:
                lat.append(now - ts)
                n += 1
        self.in_window += n
        self.total += fires

    def _publish_payloads(self, fires: Sequence[RenderedFire]) -> None:
        if self.timeline is not None and fires:
            now = time.time()
            second = self.timeline.get(int(now))
            if second is None:  # once a second: the backlog is a query
                waiting = self._backlog() if self._backlog is not None else -1
                second = self.timeline[int(now)] = [0.0, 0, waiting]
            second[0] = max(second[0], now - min(fire[1] for fire in fires))
            second[1] += len(fires)
        self._count((fire[1] for fire in fires), len(fires))
        if self._inner_payloads is not None:
            self._inner_payloads(fires)

    def publish(self, fired: JobFired) -> None:
        self.publish_many([fired])

    def publish_many(self, fires: Sequence[JobFired]) -> None:
        self._count((f.scheduled_time.timestamp() for f in fires), len(fires))
        if self._inner_many is not None:
            self._inner_many(fires)
        elif self._inner is not None:
            for fired in fires:
                self._inner.publish(fired)


class ConsumerClock:
    """What the no-op consumer saw: start lateness of fires scheduled in the window."""

    def __init__(self) -> None:
        self.lateness: list[float] = []
        self.in_window = 0
        self.window = (float("inf"), float("inf"))

    def started(self, scheduled: float) -> None:
        lo, hi = self.window
        if lo <= scheduled < hi:
            # list.append is atomic under the GIL: workers need no lock here.
            self.lateness.append(time.time() - scheduled)


def _dispatcher(
    data_dir: Path, clock: ConsumerClock | None, partition: tuple[int, int] = (0, 1)
) -> Any:
    """The local dispatcher with a no-op consumer plugin that records start lateness."""
    from serverless_scheduler_common import hookimpl
    from serverless_scheduler_common.plugins import build_registry, get_plugin_manager
    from serverless_scheduler_common.runtime.core import ConsumerRuntime
    from serverless_scheduler_common.runtime.dispatcher import LocalDispatcher
    from serverless_scheduler_common.runtime.sqlite import (
        JobNumbers,
        SqliteDeadLetterStore,
        SqliteFireLedger,
        SqliteRunRepository,
    )
    from serverless_scheduler_common.settings import Settings

    class _Bench(SnapshotJob):
        pass

    class NoopPlugin:
        @hookimpl
        def serverless_scheduler_job_types(self, registry: Any) -> None:
            from typing import Literal

            from pydantic import create_model

            registry.add(
                create_model(
                    "BenchJob", __base__=SnapshotJob, job_type=(Literal["bench_job"], "bench_job")
                )
            )

        @hookimpl
        def serverless_scheduler_handle_job(self, job: Any, fired: Any, context: Any) -> Any:
            if clock is not None:
                clock.started(fired.scheduled_time.timestamp())
            return None  # a no-op consumer: the runtime records an ok run

    settings = Settings(data_dir=data_dir)
    pm = get_plugin_manager(settings=settings, plugins=[NoopPlugin()], load_entrypoints=False)
    registry = build_registry(pm)
    # Partition i of K keeps its queue in one file and its runs and ledger in another,
    # as in local mode.
    db = history_path(data_dir, *partition)
    # Shared by the two adapters, and the ledger the only writer of marks, as in local mode.
    numbers = JobNumbers(preload=True)
    runtime = ConsumerRuntime(
        settings=settings,
        pm=pm,
        registry=registry,
        runs=SqliteRunRepository(db, numbers=numbers),
        ledger=SqliteFireLedger(db, numbers=numbers, sole_marker=True),
    )
    queue = PartitionQueue(data_dir, *partition)
    return LocalDispatcher(runtime, queue, SqliteDeadLetterStore(data_dir / "scheduler.db"))


def _child_dispatcher(settings: Any, partition: tuple[int, int] = (0, 1)) -> Any:
    """Factory of the child process's dispatcher (`--publisher process`)."""
    return _dispatcher(Path(settings.data_dir), None, partition)


class ChildProbe:
    """CPU and peak memory of the dispatcher's child processes, read from /proc."""

    def __init__(self, pids: Sequence[int]) -> None:
        self.pids = list(pids)

    def cpu_s(self) -> float:
        user, system = self.cpu_split_s()
        return user + system

    def cpu_split_s(self) -> tuple[float, float]:
        """(user, system) CPU seconds of the children so far."""
        tick = os.sysconf("SC_CLK_TCK")
        user = system = 0.0
        for pid in self.pids:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            user += int(fields[11]) / tick
            system += int(fields[12]) / tick
        return user, system

    def peak_rss_mb(self) -> float:
        """The children's peak resident memory, added up."""
        total = 0.0
        for pid in self.pids:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1]) / 1024
        return total


def _consumer_lateness(data_dir: Path, lo: float, hi: float) -> list[float]:
    """Start lateness of the runs of fires scheduled in [lo, hi), from the run history
    (of every dispatch partition)."""
    out: list[float] = []
    for db in history_files(data_dir):
        out += _file_lateness(db, lo, hi)
    return out


def _file_lateness(db: Path, lo: float, hi: float) -> list[float]:
    import sqlite3

    out: list[float] = []
    conn = sqlite3.connect(db)
    try:
        if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'runs'").fetchone():
            return out
        rows = conn.execute(
            "SELECT json_extract(data, '$.scheduled_time'), json_extract(data, '$.started_at') "
            "FROM runs"
        )
        for scheduled_text, started_text in rows:  # streamed: the history can be large
            scheduled = datetime.fromisoformat(scheduled_text).timestamp()
            if lo <= scheduled < hi:
                out.append(datetime.fromisoformat(started_text).timestamp() - scheduled)
    finally:
        conn.close()
    return out


def _jobs(
    n: int, period: float, t0: float, cron: str | None = None, ids: str = "ordered"
) -> Iterable[SnapshotJob]:
    """N benchmark jobs: rate jobs with start times spread over one period, or jobs of
    the cron expression `cron` (all firing together). With `ids="shuffled"` the job ids
    bear no relation to the firing order (as ids the server assigns at creation);
    `"ordered"` numbers them in firing order."""
    created = datetime.fromtimestamp(t0 - 60, UTC)
    policy = JobPolicy()
    step = 1
    if ids == "shuffled":  # i -> i * step mod n with step near n / golden ratio: a fixed
        # permutation that sends neighbouring fires to ids far apart
        step = max(1, int(n * 0.6180339887))
        while math.gcd(step, n) != 1:
            step += 1
    for i in range(n):
        schedule: RateSchedule | CronSchedule
        if cron is not None:
            schedule = CronSchedule(expression=cron)
        else:
            start = datetime.fromtimestamp(t0 + i * period / n, UTC)
            schedule = RateSchedule.model_construct(
                kind="rate", every=1, unit="minutes", start_at=start, end_at=None, jitter_s=0
            )
        yield SnapshotJob.model_construct(
            job_id=f"bench{i * step % n if n else i:08d}",
            owner_id="bench",
            job_type="bench_job",
            name=f"bench {i}",
            schedule=schedule,
            policy=policy,
            enabled=True,
            created_at=created,
            updated_at=created,
            version=1,
        )


def _rss_now_mb() -> float:
    """Resident set size now (Linux), 0 where /proc is missing."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return 0.0
    return pages * resource.getpagesize() / 2**20


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    values.sort()
    return values[min(len(values) - 1, int(q * len(values)))]


def count_instructions(script: str, args: Sequence[str]) -> int:
    """Instructions one run of `python script *args` executes (Valgrind's callgrind)."""
    if shutil.which("valgrind") is None:
        raise SystemExit("--instructions needs valgrind (e.g. apt-get install valgrind)")
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={Path(tmp) / 'callgrind.out'}",
                sys.executable,
                script,
                *args,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    found = re.search(r"Collected : (\d+)", proc.stderr)
    if found is None:
        raise SystemExit(f"callgrind reported no total:\n{proc.stderr[-2000:]}")
    return int(found.group(1))


class _StoppedClock:
    """A clock that stays at `t`: in virtual time the benchmark moves the engine itself
    (`run_due(now)`), and jobs are armed from `t` however long adding them takes (under
    Valgrind, adding 3,000 jobs takes seconds of real time)."""

    def __init__(self, t: float) -> None:
        self._now = datetime.fromtimestamp(t, UTC)

    def now(self) -> datetime:
        return self._now


def virtual_engine(
    db: Path, publisher: Any, jobs: int, period: float
) -> tuple[TimerEngine, LocalScheduleBackend, float]:
    """An engine over a new schedule table holding `jobs` benchmark jobs whose first fires
    are spread over the period from `t0` (returned with it), for `advance`."""
    t0 = time.time()
    clock = _StoppedClock(t0)
    backend = LocalScheduleBackend(db, clock=clock)
    engine = TimerEngine(backend, publisher, clock=clock, publish_batch=2000)
    engine.load()
    backend.upsert_many(list(_jobs(jobs, period, t0)), period_s=period)
    return engine, backend, t0


def advance(engine: TimerEngine, now: float, span: float, step: float) -> float:
    """Run `engine` in virtual time from `now` for `span` seconds in steps of `step`,
    flushing its last-fire bookkeeping every 0.25 s as the running engine does; returns
    the time reached."""
    end, flushed = now + span, now
    while now < end:
        engine.run_due(now)
        if now - flushed >= 0.25:
            engine.flush()
            flushed = now
        now += step
    engine.flush()
    return now


def virtual_fires(jobs: int, periods: int, period: float = 1.0, per_batch: int = 200) -> int:
    """Fire `jobs` jobs for `periods` periods in virtual time into a durable queue table;
    returns how many fires were queued. What `--instructions` counts.

    Time advances by the span in which `per_batch` fires come due, so each queue
    transaction holds about as many fires as the running engine's at 10,000 fires/s (it
    gathers for 20 ms), and the last-fire bookkeeping is flushed every 0.25 s of virtual
    time as there."""
    from serverless_scheduler_common.runtime.sqlite import SqliteFireQueue

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "scheduler.db"
        queue = SqliteFireQueue(db)

        class QueuePublisher:
            """What local mode's `DispatcherProcess` does with rendered fires."""

            def publish_payloads(self, fires: Sequence[RenderedFire]) -> None:
                queue.add_payloads(fires)

            def publish(self, fired: JobFired) -> None:
                raise AssertionError("the engine renders fires for this publisher")

        engine, backend, t0 = virtual_engine(db, QueuePublisher(), jobs, period)
        advance(engine, t0 + period, periods * period, per_batch * period / jobs)
        # Rows are never deleted here, so the last seq is how many were queued (a count
        # would read the whole table inside the measured process).
        queued = int(str(queue._query("SELECT max(seq) FROM dispatch_queue")[0][0]))
        backend.close()
        queue.close()
    if queued != engine.stats.fired or engine.stats.missed:
        raise SystemExit(
            f"{engine.stats.fired} fired, {queued} queued, {engine.stats.missed} missed"
        )
    return queued


def inline_floor(
    jobs: int, periods: int, period: float = 10.0, per_batch: int = 200
) -> dict[str, Any]:
    """The least CPU a fire needs under local mode's contract, in one thread.

    The real engine fires `jobs` jobs for `periods` periods in virtual time (no sleeping,
    no threads), and its publisher runs each batch straight through the real consumer
    runtime and no-op plugin: the fires' JSON validated into the plugin's class
    (`parse_us_per_fire`), the overlap markers, consumer calls and run records
    (`handle_us_per_fire`), then the runs and done marks serialised and written in one
    transaction (`commit_us_per_fire`); time advances `per_batch` fires at a time (the
    engine's batches at 10,000 fires/s, as in `virtual_fires`), and its last-fire
    bookkeeping is flushed every 0.25 s of virtual time, as when running. What it leaves out is the hand-off
    itself (queue rows, a second process, waking threads) and any retry or
    back-pressure logic, so no design of the hand-off spends less per fire with this
    runtime. `engine_us_per_fire` is the rest of the total; `cores_at_10k` and
    `cores_at_50k` are the cores the total needs at 10,000 and 50,000 fires/s.
    """
    from serverless_scheduler_common.runtime.core import FireBatch

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        dispatcher = _dispatcher(data_dir, None)
        runtime, queue = dispatcher.runtime, dispatcher.queue
        runs, ledger = runtime.runs, runtime.ledger
        spent = {"parse": 0.0, "handle": 0.0, "commit": 0.0}

        class InlinePublisher:
            """Runs each rendered batch at once and commits it (no hand-off)."""

            def publish_payloads(self, fires: Sequence[RenderedFire]) -> None:
                clock = time.process_time
                parse_start = clock()
                parsed = [runtime.parse_fire(fire[2]) for fire in fires]
                handle_start = clock()
                batch, handle = FireBatch(known_done=set()), runtime.handle
                for fired in parsed:
                    result = handle(fired, batch=batch)
                    if result.disposition != "done":
                        raise SystemExit(f"fire {fired.fire_id}: {result.disposition}")
                commit_start = clock()
                queue.complete(runs=batch.runs, run_repository=runs, done=batch.done, ledger=ledger)
                spent["parse"] += handle_start - parse_start
                spent["handle"] += commit_start - handle_start
                spent["commit"] += clock() - commit_start

            def publish(self, fired: JobFired) -> None:
                raise AssertionError("the engine renders fires for this publisher")

        db = data_dir / "scheduler.db"
        engine, backend, t0 = virtual_engine(db, InlinePublisher(), jobs, period)
        tune_for_throughput()
        # One period to warm up (first fires, caches), then the measured periods: the
        # figures are those of the last span.
        now, step = t0 + period, per_batch * period / jobs
        measured: dict[str, float] = {}
        for span in (period, periods * period):
            cpu0, fired0, spent0 = time.process_time(), engine.stats.fired, dict(spent)
            now = advance(engine, now, span, step)
            measured = {key: spent[key] - spent0[key] for key in spent}
            measured["cpu"] = time.process_time() - cpu0
            measured["fires"] = engine.stats.fired - fired0
        stored = int(str(queue._query("SELECT count(*) FROM runs")[0][0]))
        backend.close()
        queue.close()
    if engine.stats.missed or stored != engine.stats.fired:
        raise SystemExit(f"{engine.stats.fired} fired, {stored} runs, {engine.stats.missed} missed")
    fires = int(measured["fires"])
    per_fire = {key: 1e6 * value / fires for key, value in measured.items() if key != "fires"}
    dispatch_us = per_fire["parse"] + per_fire["handle"] + per_fire["commit"]
    return {
        "jobs": jobs,
        "period_s": period,
        "fires": fires,
        "cpu_us_per_fire": round(per_fire["cpu"], 2),
        "engine_us_per_fire": round(per_fire["cpu"] - dispatch_us, 2),
        "dispatch_us_per_fire": round(dispatch_us, 2),
        "parse_us_per_fire": round(per_fire["parse"], 2),
        "handle_us_per_fire": round(per_fire["handle"], 2),
        "commit_us_per_fire": round(per_fire["commit"], 2),
        "cores_at_10k": round(per_fire["cpu"] * 10_000 / 1e6, 2),
        "cores_at_50k": round(per_fire["cpu"] * 50_000 / 1e6, 2),
    }


def _instructions_result() -> dict[str, Any]:
    jobs, low, high = 3000, 2, 12
    print(f"counting {jobs} jobs over {low} and {high} periods under callgrind...", file=sys.stderr)
    counts = {}
    for periods in (low, high):
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            args = ["--virtual-periods", str(periods), "--jobs", str(jobs), "--out", out.name]
            instructions = count_instructions(__file__, args)
            counts[periods] = (instructions, json.loads(Path(out.name).read_text())["fires"])
    (i_low, f_low), (i_high, f_high) = counts[low], counts[high]
    return {
        "jobs": jobs,
        "fires": [f_low, f_high],
        "instructions_per_fire": (i_high - i_low) // (f_high - f_low),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--period", type=float, default=10.0)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--publisher", choices=["process", "dispatcher", "noop"], default="process")
    parser.add_argument(
        "--dispatchers",
        type=int,
        default=1,
        help="dispatcher processes with --publisher process (local mode's "
        "SCHEDULER_DISPATCHER_PROCESSES)",
    )
    parser.add_argument(
        "--cron",
        metavar="EXPRESSION",
        help="jobs of this cron expression instead (every job fires at its fire times, "
        "together; the window starts 5 s before one; --period is ignored)",
    )
    parser.add_argument(
        "--ids",
        choices=["shuffled", "ordered"],
        default="shuffled",
        help="job ids unrelated to the firing order (default, as ids assigned at "
        "creation) or numbered in firing order",
    )
    parser.add_argument("--warmup", type=float, default=None, help="seconds before measuring")
    parser.add_argument(
        "--lead",
        type=float,
        default=None,
        help="seconds from the start of adding the jobs to the first anchor (default "
        "jobs / 12,500, at least 2; 0: jobs fire while they are being added)",
    )
    parser.add_argument(
        "--drain", type=float, default=2.0, help="seconds the consumer may finish late fires"
    )
    parser.add_argument(
        "--timeline",
        action="store_true",
        help="also print, per second, the fires handed off, the latest one's lateness and "
        "the fires waiting in the dispatcher (queued rows; -1 without one) (stderr)",
    )
    parser.add_argument(
        "--instructions", action="store_true", help="count the engine's instructions per fire"
    )
    parser.add_argument(
        "--floor",
        action="store_true",
        help="the least CPU per fire: engine and dispatch in one thread in virtual time "
        "(no hand-off), over --jobs jobs and 3 periods of --period",
    )
    parser.add_argument("--virtual-periods", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.virtual_periods is not None:
        fires = virtual_fires(args.jobs, args.virtual_periods)
        if args.out is not None:
            args.out.write_text(json.dumps({"fires": fires}))
        return 0
    if args.instructions:
        print(json.dumps(_instructions_result()))
        return 0
    if args.floor:
        print(json.dumps(inline_floor(args.jobs, 3, args.period)))
        return 0

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        consumer = ConsumerClock()
        inner: Any = None
        if args.publisher == "dispatcher":
            inner = _dispatcher(data_dir, consumer)
        elif args.publisher == "process":
            from serverless_scheduler_common.runtime.process import DispatcherProcess
            from serverless_scheduler_common.settings import Settings

            inner = DispatcherProcess(
                Settings(data_dir=data_dir, dispatcher_processes=args.dispatchers),
                _child_dispatcher,
            )
        backend = LocalScheduleBackend(data_dir / "scheduler.db")
        cron = CronSchedule(expression=args.cron) if args.cron else None
        period = float(cron.period_s) if cron is not None else args.period
        warmup = args.warmup if args.warmup is not None else max(2.0, period)
        # Anchors spread over one period, starting once the jobs are likely all added
        # (`lead_s`): the first fires find the pipeline idle, and the window measures
        # the steady state, not the import. A job armed after its anchor fires first at
        # its next grid point, so a slower import never causes a catch-up burst either.
        lead = args.lead if args.lead is not None else max(2.0, args.jobs / 12_500)
        t0 = time.time() + (lead if cron is None else 0.0)
        publisher = MeasuringPublisher(inner, (float("inf"), float("inf")))
        if args.timeline:
            publisher.timeline = {}
        engine = TimerEngine(backend, publisher, publish_batch=2000)
        engine.load()
        child: ChildProbe | None = None
        if inner is not None:
            inner.start()
            if args.publisher == "process":
                child = ChildProbe(inner.pids)
        engine.start()

        # add_jobs_s: storing and arming, not building the pydantic jobs beforehand.
        add_jobs_s = 0.0
        chunk: list[SnapshotJob] = []
        for job in _jobs(args.jobs, period, t0, args.cron, args.ids):
            chunk.append(job)
            if len(chunk) == 5000:
                t_add = time.perf_counter()
                backend.upsert_many(chunk, period_s=args.period)
                add_jobs_s += time.perf_counter() - t_add
                chunk = []
        t_add = time.perf_counter()
        backend.upsert_many(chunk, period_s=args.period)
        while engine.armed < args.jobs:
            time.sleep(0.005)
        add_jobs_s += time.perf_counter() - t_add
        added_at = time.time()
        # What local mode does once its engine has armed the stored jobs.
        tune_for_throughput()
        rss_loaded = _rss_now_mb()
        # Adding the jobs (CPU and the write lock) puts the pipeline behind; measure once
        # that burst is absorbed: at most 100 ms of fires still queued (60 s at most).
        t_settle = time.monotonic()
        if inner is not None:
            allowed = max(1, int(args.jobs / period * 0.1))
            while time.monotonic() - t_settle < 60 and inner.backlog() > allowed:
                time.sleep(0.05)
        settle_s = time.monotonic() - t_settle

        lo = max(time.time(), t0) + warmup  # warm-up once the jobs fire
        fire_times: list[float] = []
        if cron is not None:
            # The window starts 5 s before a fire time: each burst has the window's rest
            # to be handed off.
            lo = cron.next_fire_after(datetime.fromtimestamp(lo + 5, UTC)).timestamp() - 5  # type: ignore[union-attr]
            at = datetime.fromtimestamp(lo, UTC)
            while (
                nxt := cron.next_fire_after(at)
            ) is not None and nxt.timestamp() < lo + args.duration:
                fire_times.append(nxt.timestamp())
                at = nxt
        publisher._lo, publisher._hi = lo, lo + args.duration
        consumer.window = (lo, lo + args.duration)
        time.sleep(max(0.0, lo - time.time()))
        usage = resource.getrusage(resource.RUSAGE_SELF)
        cpu0 = usage.ru_utime + usage.ru_stime
        child_cpu0 = child.cpu_split_s() if child is not None else (0.0, 0.0)
        sys0 = usage.ru_stime
        fired0 = publisher.total
        room_waited = getattr(inner, "room_waited_s", None)
        waited0 = room_waited() if room_waited is not None else 0.0
        time.sleep(max(0.0, lo + args.duration - time.time()))
        waited_s = room_waited() - waited0 if room_waited is not None else None
        usage = resource.getrusage(resource.RUSAGE_SELF)
        cpu_s = usage.ru_utime + usage.ru_stime - cpu0
        child_user, child_sys = child.cpu_split_s() if child is not None else (0.0, 0.0)
        child_cpu_s = child_user + child_sys - sum(child_cpu0)
        cpu_sys_s = usage.ru_stime - sys0 + child_sys - child_cpu0[1]
        cpu_s += child_cpu_s
        fires_measured = publisher.total - fired0
        time.sleep(0.5)  # fires due inside the window but late still count (as late)
        engine.stop()
        if inner is not None:
            inner.wait_idle(timeout=max(0.0, args.drain - 0.5))
        backlog = inner.backlog() if inner is not None else 0
        queued = inner.backlog() if inner is not None else 0
        child_rss = child.peak_rss_mb() if child is not None else 0.0
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        if inner is not None:
            inner.stop(drain=False, timeout=5)
        if child is not None:
            consumer.lateness = _consumer_lateness(data_dir, lo, lo + args.duration)

        expected = (
            args.jobs * len(fire_times)
            if cron is not None
            else round(args.jobs * args.duration / period)
        )
        lat = publisher.lateness
        result = {
            "jobs": args.jobs,
            "period_s": period,
            "duration_s": args.duration,
            "publisher": args.publisher,
            "dispatchers": args.dispatchers if args.publisher == "process" else 0,
            "ids": args.ids,
            "expected_fires_per_s": round(expected / args.duration, 1),
            "fires_per_s": round(publisher.in_window / args.duration, 1),
            "handed_off_per_s": round(fires_measured / args.duration, 1),
            "lateness_p50_ms": round(_pct(lat, 0.50) * 1000, 2),
            "lateness_p99_ms": round(_pct(lat, 0.99) * 1000, 2),
            "missed": max(0, expected - publisher.in_window) + engine.stats.missed,
            "add_jobs_s": round(add_jobs_s, 3),
            # Seconds from the jobs all armed to the first anchor (`--lead`); negative:
            # the first fires came while jobs were still being added.
            "lead_spare_s": round(t0 - added_at, 2) if cron is None else None,
            "settle_s": round(settle_s, 2),
            "cpu_s": round(cpu_s, 3),
            "cpu_sys_s": round(cpu_sys_s, 3),
            "cpu_us_per_fire": round(cpu_s / max(1, fires_measured) * 1e6, 2),
            "rss_mb": round(rss_mb, 1),
            "rss_loaded_mb": round(rss_loaded, 1),
            "rss_end_mb": round(_rss_now_mb(), 1),
            "dispatcher_backlog": backlog,
        }
        if child is not None:
            result["rss_engine_mb"] = result["rss_mb"]
            result["rss_dispatcher_mb"] = round(child_rss, 1)
            result["rss_mb"] = round(result["rss_mb"] + child_rss, 1)
            result["cpu_dispatcher_s"] = round(child_cpu_s, 3)
        if inner is not None:
            clat = consumer.lateness
            result.update(
                {
                    "consumer_fires_per_s": round(len(clat) / args.duration, 1),
                    "consumer_lateness_p50_ms": round(_pct(clat, 0.50) * 1000, 2),
                    "consumer_lateness_p99_ms": round(_pct(clat, 0.99) * 1000, 2),
                    "consumer_missed": max(0, expected - len(clat)),
                    "dispatcher_queued_rows": queued,
                    "publish_waited_s": round(waited_s, 3) if waited_s is not None else None,
                }
            )
        print(json.dumps(result))
        if publisher.timeline:
            first = min(publisher.timeline)
            for second, (late, count, waiting) in sorted(publisher.timeline.items()):
                print(
                    f"second {second - first:4d}: handed off {count:7d}, "
                    f"latest {late * 1000:8.1f} ms, waiting {int(waiting):7d}",
                    file=sys.stderr,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
