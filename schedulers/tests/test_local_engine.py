"""The local timer engine in virtual time: rate, cron across DST, at, pause, misfires."""

from __future__ import annotations

import gc
import itertools
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from serverless_scheduler_schedulers.local_engine import (
    LocalScheduleBackend,
    TimerEngine,
)
from serverless_scheduler_schedulers.sync import apply_change

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def db(tmp_path: Any) -> Any:
    return tmp_path / "scheduler.db"


@pytest.fixture
def backend(db: Any, clock: Any) -> LocalScheduleBackend:
    return LocalScheduleBackend(db, clock=clock)


@pytest.fixture
def engine(backend: LocalScheduleBackend, publisher: Any, clock: Any) -> TimerEngine:
    eng = TimerEngine(backend, publisher, clock=clock)
    eng.load()
    return eng


def run_until(engine: TimerEngine, clock: Any, until: datetime, step: timedelta) -> None:
    while clock.now() < until:
        clock.set(min(until, clock.now() + step))
        engine.run_due(clock.now())


def times(publisher: Any, job_id: str | None = None) -> list[datetime]:
    return [f.scheduled_time for f in publisher.fired if job_id is None or f.job_id == job_id]


def test_rate_fires_on_its_grid(
    engine: Any, backend: Any, publisher: Any, clock: Any, make_job: Any
) -> None:
    backend.upsert(make_job())
    engine.run_due(T0 + timedelta(minutes=4, seconds=59))
    assert publisher.fired == []
    run_until(engine, clock, T0 + timedelta(hours=1), timedelta(seconds=20))
    assert times(publisher) == [T0 + timedelta(minutes=5 * k) for k in range(1, 13)]
    fired = publisher.fired[0]
    assert fired.fire_id == "job1@2026-03-01T12:05:00Z"
    assert fired.job_type == "ping_job" and fired.job["url"] == "https://example.invalid/"
    assert fired.model_dump() == type(fired).model_validate(fired.model_dump()).model_dump()
    engine.flush()
    record = backend.fire_record("alice", "job1")
    assert record["last_fire_at"] == (T0 + timedelta(hours=1)).timestamp()


def test_cron_across_dst(
    engine: Any, backend: Any, publisher: Any, clock: Any, make_job: Any
) -> None:
    clock.set(datetime(2026, 3, 27, 0, 0, tzinfo=UTC))
    cron = {"kind": "cron", "expression": "0 9 * * *", "timezone": "Europe/Warsaw"}
    backend.upsert(make_job(schedule=cron))
    run_until(engine, clock, datetime(2026, 3, 31, 12, 0, tzinfo=UTC), timedelta(minutes=30))
    assert times(publisher) == [
        datetime(2026, 3, 27, 8, 0, tzinfo=UTC),  # 09:00 CET
        datetime(2026, 3, 28, 8, 0, tzinfo=UTC),
        datetime(2026, 3, 29, 7, 0, tzinfo=UTC),  # 09:00 CEST after the switch
        datetime(2026, 3, 30, 7, 0, tzinfo=UTC),
        datetime(2026, 3, 31, 7, 0, tzinfo=UTC),
    ]


def test_cron_jobs_of_one_expression_share_their_schedule_and_fire_together(
    engine: Any, backend: Any, publisher: Any, clock: Any, make_job: Any
) -> None:
    clock.set(datetime(2026, 10, 24, 22, 0, tzinfo=UTC))
    cron = {"kind": "cron", "expression": "30 2 * * *", "timezone": "Europe/Warsaw"}
    other = {**cron, "timezone": "UTC"}
    for i in range(20):
        backend.upsert(make_job(f"j{i}", schedule=cron if i % 2 else other))
    run_until(engine, clock, datetime(2026, 10, 27, 3, 0, tzinfo=UTC), timedelta(minutes=7))
    warsaw = [  # the night clocks go back, 02:30 comes twice: it fires once, in CEST
        datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
        datetime(2026, 10, 26, 1, 30, tzinfo=UTC),
        datetime(2026, 10, 27, 1, 30, tzinfo=UTC),
    ]
    utc = [datetime(2026, 10, d, 2, 30, tzinfo=UTC) for d in (25, 26, 27)]
    for i in range(20):
        assert times(publisher, f"j{i}") == (warsaw if i % 2 else utc), i
    schedules = {id(entry.schedule) for entry in engine._entries.values()}
    assert len(schedules) == 2  # one object per distinct schedule, not one per job


def test_at_fires_once_and_is_done(
    engine: Any, backend: Any, publisher: Any, clock: Any, make_job: Any
) -> None:
    backend.upsert(make_job("once", schedule={"kind": "at", "at": "2026-03-01T13:30:00+01:00"}))
    backend.upsert(make_job("late", schedule={"kind": "at", "at": "2026-03-01T09:00:00Z"}))
    run_until(engine, clock, T0 + timedelta(hours=2), timedelta(minutes=1))
    assert times(publisher) == [T0 + timedelta(minutes=30)]
    engine.flush()
    assert backend.is_done("alice", "once")
    late = backend.fire_record("alice", "late")
    assert late["done"] and late["missed"] == 1  # too late: skipped and recorded
    # a restart does not fire it again
    engine2 = TimerEngine(backend, publisher, clock=clock)
    assert engine2.load() == 0


def test_start_end_and_deterministic_jitter(
    engine: Any, backend: Any, publisher: Any, clock: Any, make_job: Any
) -> None:
    window = {"kind": "rate", "every": 1, "unit": "minutes",
              "start_at": "2026-03-01T12:10:00Z", "end_at": "2026-03-01T12:13:00Z"}  # fmt: skip
    backend.upsert(make_job("w", schedule=window))
    backend.upsert(
        make_job("j", schedule={"kind": "rate", "every": 5, "unit": "minutes", "jitter_s": 120})
    )
    fired_at: list[datetime] = []
    while clock.now() < T0 + timedelta(minutes=30):
        clock.set(clock.now() + timedelta(seconds=1))
        before = len(times(publisher, "j"))
        engine.run_due(clock.now())
        if len(times(publisher, "j")) > before:
            fired_at.append(clock.now())
    assert times(publisher, "w") == [T0 + timedelta(minutes=m) for m in (10, 11, 12, 13)]
    nominal = times(publisher, "j")
    assert nominal == [T0 + timedelta(minutes=5 * k) for k in range(1, 6)]
    delays = {(a - n).total_seconds() for a, n in zip(fired_at, nominal, strict=True)}
    assert len(delays) == 1 and 0 < delays.pop() <= 121  # same offset every time
    other = TimerEngine(backend, publisher, clock=clock)  # a restart keeps the offset
    other.load()
    assert other._entries[("alice", "j")].offset == engine._entries[("alice", "j")].offset


def test_pause_and_resume(
    engine: Any,
    backend: Any,
    publisher: Any,
    clock: Any,
    make_job: Any,
    changes: Any,
    registry: Any,
) -> None:
    apply_change(changes(make_job(version=1), "insert"), backend, registry)
    run_until(engine, clock, T0 + timedelta(minutes=10), timedelta(minutes=1))
    assert len(publisher.fired) == 2
    apply_change(changes(make_job(version=2, enabled=False)), backend, registry)
    run_until(engine, clock, T0 + timedelta(minutes=42), timedelta(minutes=1))
    assert len(publisher.fired) == 2  # paused: nothing fires, nothing is caught up later
    apply_change(changes(make_job(version=3)), backend, registry)
    run_until(engine, clock, T0 + timedelta(minutes=50), timedelta(minutes=1))
    assert times(publisher)[2:] == [T0 + timedelta(minutes=45), T0 + timedelta(minutes=50)]


@pytest.mark.parametrize("restart", [True, False], ids=["restart", "pause"])
def test_misfire_after_one_hour_stop(
    restart: bool, backend: Any, publisher: Any, clock: Any, make_job: Any
) -> None:
    missed: list[tuple[str, datetime]] = []
    engine = TimerEngine(
        backend, publisher, clock=clock, on_missed=lambda o, j, t: missed.append((j, t))
    )
    engine.load()
    backend.upsert(make_job("coalesce"))  # every 5 min, window = one period
    backend.upsert(make_job("strict", policy={"catchup_window_s": 10}))
    hourly = {"kind": "cron", "expression": "0 * * * *", "timezone": "UTC"}
    backend.upsert(make_job("hourly", schedule=hourly, policy={"catchup_window_s": 60}))
    every5 = {"kind": "cron", "expression": "*/5 * * * *", "timezone": "Europe/Warsaw"}
    for twin in ("cron-a", "cron-b"):  # one shared computation of the newest missed fire
        backend.upsert(make_job(twin, schedule=every5))
    run_until(engine, clock, T0 + timedelta(minutes=10), timedelta(minutes=1))
    assert len(times(publisher, "coalesce")) == 2
    engine.flush()

    clock.set(T0 + timedelta(hours=1, minutes=10, seconds=30))  # stopped for an hour
    if restart:
        engine = TimerEngine(
            backend, publisher, clock=clock, on_missed=lambda o, j, t: missed.append((j, t))
        )
        engine.load()
    engine.run_due(clock.now())
    # newest missed fire (13:10) is 30 s old, inside the 5-minute window: one run
    assert times(publisher, "coalesce")[2:] == [T0 + timedelta(hours=1, minutes=10)]
    for twin in ("cron-a", "cron-b"):  # the same for cron jobs (window: one period)
        assert times(publisher, twin)[2:] == [T0 + timedelta(hours=1, minutes=10)]
    # 30 s is outside a 10 s window: skipped and recorded, not run
    assert times(publisher, "strict")[2:] == []
    # the 13:00 hourly fire is 10 minutes old: outside 60 s, skipped
    assert times(publisher, "hourly") == []
    assert ("strict", T0 + timedelta(hours=1, minutes=10)) in missed
    assert ("hourly", T0 + timedelta(hours=1)) in missed
    engine.flush()
    assert backend.fire_record("alice", "strict")["missed"] == 1
    clock.set(T0 + timedelta(hours=1, minutes=11))  # back on whole minutes
    run_until(engine, clock, T0 + timedelta(hours=2), timedelta(minutes=1))
    assert times(publisher, "coalesce")[3] == T0 + timedelta(hours=1, minutes=15)
    assert times(publisher, "strict")[2] == T0 + timedelta(hours=1, minutes=15)
    assert times(publisher, "hourly") == [T0 + timedelta(hours=2)]


def test_delete_and_update_rearm(
    engine: Any, backend: Any, publisher: Any, clock: Any, make_job: Any
) -> None:
    backend.upsert(make_job("a"))
    backend.upsert(make_job("b"))
    run_until(engine, clock, T0 + timedelta(minutes=5), timedelta(minutes=1))
    backend.delete("alice", "a")
    backend.upsert(
        make_job("b", version=2, schedule={"kind": "rate", "every": 1, "unit": "minutes"})
    )
    run_until(engine, clock, T0 + timedelta(minutes=8), timedelta(minutes=1))
    assert times(publisher, "a") == [T0 + timedelta(minutes=5)]
    assert times(publisher, "b")[1:] == [T0 + timedelta(minutes=m) for m in (6, 7, 8)]


def test_a_job_edited_before_its_next_fire_fires_once_at_its_new_version(
    engine: Any, backend: Any, publisher: Any, clock: Any, make_job: Any
) -> None:
    backend.upsert(make_job())
    engine.run_due(T0)
    clock.set(T0 + timedelta(seconds=30))
    # Same schedule, newer version: the old and the new timer fall on the same instant.
    backend.upsert(make_job(version=2))
    engine.run_due(clock.now())
    run_until(engine, clock, T0 + timedelta(minutes=5, seconds=1), timedelta(seconds=20))
    assert times(publisher) == [T0 + timedelta(minutes=5)]
    assert publisher.fired[0].job["version"] == 2


def test_the_timer_heap_holds_nothing_the_collector_keeps_tracking(
    engine: Any, backend: Any, publisher: Any, clock: Any, make_job: Any
) -> None:
    """Every job's heap tuple is replaced once a period: tuples the collector kept
    tracking filled its older generations and made each pass over them a stall."""
    for name in ("a", "b", "c"):
        backend.upsert(make_job(name, schedule={"kind": "rate", "every": 1, "unit": "minutes"}))
    run_until(engine, clock, T0 + timedelta(minutes=3), timedelta(seconds=30))
    assert len(times(publisher)) == 9
    heap = list(engine._heap)
    assert len(heap) == 3
    gc.collect(0)  # a young pass stops tracking tuples of untracked items
    assert not any(gc.is_tracked(item) for item in heap)


class BatchRecorder:
    """`publish_many` calls as they came (one list per hand-over)."""

    def __init__(self) -> None:
        self.calls: list[list[Any]] = []

    def publish(self, fired: Any) -> None:
        self.publish_many([fired])

    def publish_many(self, fires: Any) -> None:
        self.calls.append(list(fires))


@pytest.mark.parametrize(("gather_s", "hand_overs"), [(0.0, 2), (2.0, 1)])
def test_the_publishing_thread_gathers_fires_of_several_timer_wake_ups(
    db: Any, make_job: Any, gather_s: float, hand_overs: int
) -> None:
    backend = LocalScheduleBackend(db)
    recorder = BatchRecorder()
    engine = TimerEngine(backend, recorder, publish_gather_s=gather_s)
    start = datetime.now(UTC) + timedelta(seconds=1.0)  # room for a slow machine's start
    jobs = [
        make_job(
            job_id=f"j{i}",
            schedule={
                "kind": "at",
                "at": (start + timedelta(seconds=0.6 * i)).isoformat(),
            },
        )
        for i in range(2)
    ]
    backend.upsert_many(jobs)
    engine.start()
    try:
        deadline = time.monotonic() + 5
        while sum(map(len, recorder.calls)) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        engine.stop()
    # Two wake-ups 600 ms apart: two transactions without gathering, one with it.
    assert len(recorder.calls) == hand_overs
    assert sorted(f.job_id for call in recorder.calls for f in call) == ["j0", "j1"]


def test_stop_hands_over_gathered_fires_at_once(db: Any, make_job: Any) -> None:
    backend = LocalScheduleBackend(db)
    recorder = BatchRecorder()
    engine = TimerEngine(backend, recorder, publish_gather_s=30.0)
    backend.upsert_many([make_job(schedule={"kind": "at", "at": datetime.now(UTC).isoformat()})])
    engine.start()
    deadline = time.monotonic() + 5
    while engine.stats.fired < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    began = time.monotonic()
    engine.stop()
    assert time.monotonic() - began < 5  # not the 30 s gather
    assert [f.job_id for call in recorder.calls for f in call] == ["job1"]


def test_engine_thread_fires_in_real_time(db: Any, publisher: Any, make_job: Any) -> None:
    backend = LocalScheduleBackend(db)
    engine = TimerEngine(backend, publisher, flush_interval_s=0.1)
    engine.start()
    try:
        now = datetime.now(UTC)
        job = make_job(
            schedule={"kind": "rate", "every": 1, "unit": "minutes", "start_at": now.isoformat()}
        )
        backend.upsert_many([job], period_s=0.05)
        deadline = time.monotonic() + 5
        while len(publisher.fired) < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        engine.stop()
    assert len(publisher.fired) >= 5
    stamps = [f.scheduled_time for f in publisher.fired[:5]]
    assert all(b > a for a, b in itertools.pairwise(stamps))
    assert backend.fire_record("alice", "job1")["last_fire_at"] is not None


def test_arming_runs_no_collector_pass_and_leaves_the_collector_on(
    db: Any, clock: Any, publisher: Any, make_job: Any
) -> None:
    LocalScheduleBackend(db, clock=clock).upsert_many(make_job(f"j{i:04d}") for i in range(3000))
    engine = TimerEngine(LocalScheduleBackend(db, clock=clock), publisher, clock=clock)
    passes: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            passes.append(info["generation"])

    threshold = gc.get_threshold()
    gc.set_threshold(100, 2, 2)  # small thresholds: arming would pass many times
    gc.callbacks.append(count)
    try:
        assert engine.load() == 3000
    finally:
        gc.callbacks.remove(count)
        gc.set_threshold(*threshold)
    assert len(passes) <= 1  # at most the one when the collector is back
    assert gc.isenabled()


def test_arming_many_schedules_reports_its_progress(
    db: Any, clock: Any, publisher: Any, make_job: Any, caplog: pytest.LogCaptureFixture
) -> None:
    LocalScheduleBackend(db, clock=clock).upsert_many(make_job(f"j{i:04d}") for i in range(2100))
    engine = TimerEngine(LocalScheduleBackend(db, clock=clock), publisher, clock=clock)
    engine.progress_from, engine.progress_s = 2000, 0.0
    with caplog.at_level("INFO", logger="serverless_scheduler_schedulers.local_engine"):
        assert engine.load() == 2100
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("arming 2100 schedules")
    assert "armed 1024 of 2100 schedules" in lines and "armed 2048 of 2100 schedules" in lines
    assert lines[-1].startswith("armed 2100 schedules in ")

    caplog.clear()
    quiet = TimerEngine(LocalScheduleBackend(db, clock=clock), publisher, clock=clock)
    with caplog.at_level("INFO", logger="serverless_scheduler_schedulers.local_engine"):
        assert quiet.load() == 2100  # below the default 10,000: nothing to report
    assert not [r for r in caplog.records if "arm" in r.getMessage()]


def test_a_one_off_job_moved_to_a_new_time_after_it_fired_fires_again(
    engine: Any, backend: Any, publisher: Any, clock: Any, make_job: Any
) -> None:
    backend.upsert(make_job(schedule={"kind": "at", "at": "2026-03-01T12:01:00Z"}))
    run_until(engine, clock, T0 + timedelta(minutes=2), timedelta(seconds=10))
    engine.flush()
    assert backend.is_done("alice", "job1")
    moved = {"kind": "at", "at": "2026-03-01T12:05:00Z"}
    backend.upsert(make_job(version=2, schedule=moved))
    assert not backend.is_done("alice", "job1")
    run_until(engine, clock, T0 + timedelta(minutes=6), timedelta(seconds=10))
    assert times(publisher) == [T0 + timedelta(minutes=1), T0 + timedelta(minutes=5)]
    # A new version that keeps the time it fired at (a rename) does not fire it again,
    # nor does a restart.
    backend.upsert(make_job(version=3, schedule=moved))
    run_until(engine, clock, T0 + timedelta(minutes=8), timedelta(seconds=10))
    engine.flush()
    assert TimerEngine(backend, publisher, clock=clock).load() == 0
    assert len(publisher.fired) == 2


def test_a_cron_schedule_that_never_fires_is_not_armed_and_harms_no_other_job(
    backend: Any,
    publisher: Any,
    clock: Any,
    make_job: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    never = {"kind": "cron", "expression": "0 0 31 2 *", "timezone": "UTC"}  # 31 February
    engine = TimerEngine(backend, publisher, clock=clock)
    engine.load()
    backend.upsert(make_job("never", schedule=never))
    backend.upsert(make_job("other"))
    with caplog.at_level("ERROR", logger="serverless_scheduler_schedulers.local_engine"):
        run_until(engine, clock, T0 + timedelta(minutes=5), timedelta(minutes=1))
        assert times(publisher, "other") == [T0 + timedelta(minutes=5)]
        # a restart arms the other jobs instead of failing
        restarted = TimerEngine(backend, publisher, clock=clock)
        assert restarted.load() == 1
    assert "alice/never" in caplog.text and "not armed" in caplog.text
    assert engine.next_fire_at("alice", "never") is None


def test_a_catch_up_window_of_zero_still_runs_fires_the_running_engine_reaches_late(
    engine: Any, backend: Any, publisher: Any, clock: Any, make_job: Any
) -> None:
    rate = {"kind": "rate", "every": 1, "unit": "minutes"}
    backend.upsert(make_job(schedule=rate, policy={"catchup_window_s": 0}))
    engine.run_due(T0)
    engine.run_due(T0 + timedelta(minutes=1, milliseconds=30))  # a timer wake-up's lateness
    assert times(publisher) == [T0 + timedelta(minutes=1)]
    assert engine.stats.missed == 0
    engine.run_due(T0 + timedelta(minutes=2, seconds=30))  # far behind: skipped
    assert times(publisher) == [T0 + timedelta(minutes=1)]
    assert engine.stats.missed == 1


def test_an_edit_during_a_fires_jitter_delay_keeps_that_fire(
    engine: Any, backend: Any, publisher: Any, clock: Any, make_job: Any
) -> None:
    rate = {"kind": "rate", "every": 5, "unit": "minutes", "jitter_s": 240}
    backend.upsert(make_job(schedule=rate))
    engine.run_due(T0)
    offset = engine._entries[("alice", "job1")].offset
    assert offset > 1
    # The 12:05 fire is due at 12:05 + offset; the job is renamed in between.
    clock.set(T0 + timedelta(minutes=5, seconds=offset / 2))
    engine.run_due(clock.now())
    backend.upsert(make_job(version=2, schedule=rate, name="renamed"))
    run_until(engine, clock, T0 + timedelta(minutes=15), timedelta(seconds=1))
    assert times(publisher) == [T0 + timedelta(minutes=5), T0 + timedelta(minutes=10)]
    assert [f.job["name"] for f in publisher.fired] == ["renamed", "renamed"]
