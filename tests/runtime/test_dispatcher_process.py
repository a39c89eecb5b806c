"""The local dispatcher in its own process (`DispatcherProcess`), as local mode runs it."""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from serverless_scheduler.local import build_local_system, child_dispatcher
from serverless_scheduler_common import Settings
from serverless_scheduler_common.events import JobFired
from serverless_scheduler_common.ports import render_fire
from serverless_scheduler_common.runtime.dispatcher import LocalDispatcher
from serverless_scheduler_common.runtime.partitions import (
    HISTORY_TABLES,
    history_files,
    history_path,
    partition_path,
    table_names,
)
from serverless_scheduler_common.runtime.process import DispatcherProcess
from serverless_scheduler_common.runtime.sqlite import SqliteFireQueue, SqliteRunRepository
from serverless_scheduler_common.sqlite import db_path_for
from serverless_scheduler_example.plugin import ExampleJob


def _fire(i: int, *, at: datetime | None = None) -> JobFired:
    job = ExampleJob(
        job_id=f"job{i:03d}",
        owner_id="alice",
        name=f"example {i}",
        message=f"message {i}",
        schedule={"kind": "rate", "every": 1, "unit": "minutes"},
    )
    scheduled = at or datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    return JobFired(
        job_type="example_job",
        job_id=job.job_id,
        owner_id=job.owner_id,
        scheduled_time=scheduled,
        job=job.model_dump(mode="json"),
    )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", retry_base_s=0.05, retry_max_s=0.2)


@pytest.fixture
def process(settings: Settings) -> Iterator[DispatcherProcess]:
    proc = DispatcherProcess(settings, child_dispatcher, restart_delay_s=0.1)
    yield proc
    proc.stop(drain=False, timeout=10)


def _runs(settings: Settings, job_id: str) -> list[str]:
    runs = SqliteRunRepository(
        db_path_for(settings.data_dir), others=lambda: history_files(settings.data_dir)
    )
    return [f"{r.status}: {r.summary}" for r in runs.list("alice", job_id).items]


def test_fires_run_in_the_child_with_the_installed_plugins(
    settings: Settings, process: DispatcherProcess
) -> None:
    process.start()
    assert process.pid is not None and process.pid != os.getpid()
    process.publish_many([_fire(i) for i in range(20)])
    # The timer engine's fast path: fires already rendered to JobFired JSON.
    rendered = _fire(20)
    process.publish_payloads([render_fire(rendered)])
    assert process.wait_idle(timeout=30)
    for i in range(21):
        assert _runs(settings, f"job{i:03d}") == [f"ok: logged: message {i}"]


def test_a_fire_published_twice_runs_once(settings: Settings, process: DispatcherProcess) -> None:
    process.start()
    fired = _fire(1)
    process.publish(fired)
    assert process.wait_idle(timeout=30)
    process.publish(fired)  # a second delivery of a completed fire
    assert process.wait_idle(timeout=30)
    assert _runs(settings, "job001") == ["ok: logged: message 1"]


def test_fires_accepted_while_stopped_run_after_start(
    settings: Settings, process: DispatcherProcess
) -> None:
    process.publish_many([_fire(i) for i in range(5)])
    assert process.backlog() == 5  # durable before any dispatcher runs
    process.start()
    assert process.wait_idle(timeout=30)
    assert all(_runs(settings, f"job{i:03d}") for i in range(5))


def test_a_killed_child_is_started_again_and_loses_nothing(
    settings: Settings, process: DispatcherProcess
) -> None:
    process.start()
    first = process.pid
    assert first is not None
    os.kill(first, signal.SIGKILL)
    process.publish_many([_fire(i) for i in range(10)])  # accepted while no child runs
    deadline = time.monotonic() + 30
    while (process.pid == first or process.restarts == 0) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.restarts >= 1 and process.pid != first
    assert process.wait_idle(timeout=30)
    assert all(_runs(settings, f"job{i:03d}") == [f"ok: logged: message {i}"] for i in range(10))


def test_stop_with_drain_finishes_due_fires_and_keeps_later_ones(
    settings: Settings, process: DispatcherProcess
) -> None:
    process.start()
    now = datetime.now(UTC) + timedelta(seconds=1)
    process.publish_many([_fire(i, at=now) for i in range(5)])
    process.stop(drain=True, timeout=30)
    assert process.backlog() == 0
    assert all(_runs(settings, f"job{i:03d}") for i in range(5))


def test_local_mode_runs_the_dispatcher_in_a_child_by_default(settings: Settings) -> None:
    system = build_local_system(settings)
    assert isinstance(system.dispatcher, DispatcherProcess)
    in_process = build_local_system(
        settings.model_copy(update={"dispatcher_process": False})
    ).dispatcher
    assert isinstance(in_process, LocalDispatcher)
    # Plugin objects cannot cross into a child process: they keep the dispatcher here.
    with_objects = build_local_system(settings, plugins=[object()]).dispatcher
    assert isinstance(with_objects, LocalDispatcher)


def test_publishing_waits_for_room_then_accepts(settings: Settings) -> None:
    proc = DispatcherProcess(
        settings, child_dispatcher, max_queued=3, publish_wait_s=0.3, depth_check_s=0.01
    )
    proc._running = True  # as if started, but no child takes fires: the queue stays full
    proc.publish_many([_fire(i) for i in range(3)])
    started = time.monotonic()
    proc.publish(_fire(3))  # waits for room, then accepts (nothing accepted is dropped)
    assert time.monotonic() - started >= 0.3
    assert proc.backlog() == 4 and proc.room_waited_s() >= 0.3
    proc._running = False
    started = time.monotonic()
    proc.publish(_fire(4))  # not running: no wait
    assert time.monotonic() - started < 0.3 and proc.backlog() == 5


def test_publishing_counts_the_queue_again_before_it_waits(settings: Settings) -> None:
    # Between counts the publisher's estimate only grows. Fires the children took
    # since the last count must leave room at once, not after the next count.
    proc = DispatcherProcess(
        settings, child_dispatcher, max_queued=3, publish_wait_s=5.0, depth_check_s=3600.0
    )
    proc._running = True  # as if started; this test takes the fires itself
    proc.publish_many([_fire(i) for i in range(3)])
    assert proc.backlog() == 3
    queue = proc.queue.partition(0)
    queue.delete([row.seq for row in queue.pending()])  # as a child's batch does
    started = time.monotonic()
    proc.publish(_fire(3))
    assert time.monotonic() - started < 2.0  # no wait: the estimate said 3, the queue 0
    assert proc.backlog() == 1 and proc.room_waited_s() < 2.0
    started = time.monotonic()
    proc.publish_wait_s = 0.3
    proc.publish_many([_fire(i) for i in range(4, 6)])  # 3 queued now: really full
    proc.publish(_fire(6))
    assert time.monotonic() - started >= 0.3
    assert proc.backlog() == 4 and proc.room_waited_s() >= 0.3
    # Room that appears while publishing waits ends the wait at the next look.
    proc.publish_wait_s = 30.0
    taken = threading.Timer(0.2, lambda: queue.delete([row.seq for row in queue.pending()]))
    taken.start()
    started = time.monotonic()
    proc.publish(_fire(7))
    assert 0.2 <= time.monotonic() - started < 10.0
    assert proc.backlog() == 1
    taken.join()
    proc._running = False


def test_two_processes_split_the_fires_and_a_killed_one_is_replaced(settings: Settings) -> None:
    proc = DispatcherProcess(settings, child_dispatcher, processes=2, restart_delay_s=0.1)
    try:
        proc.start()
        first = proc.pids
        assert len(set(first)) == 2 and os.getpid() not in first
        proc.publish_many([_fire(i) for i in range(30)])
        assert proc.wait_idle(timeout=30)
        os.kill(first[1], signal.SIGKILL)
        proc.publish_many([_fire(i) for i in range(30, 40)])  # some are the dead one's
        deadline = time.monotonic() + 30
        while proc.restarts == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.restarts == 1 and proc.pids[0] == first[0] and proc.pids[1] != first[1]
        assert proc.wait_idle(timeout=30)
        children = [child.process for child in proc._children]
    finally:
        proc.stop(drain=True, timeout=10)
    assert not any(child.is_alive() for child in children)
    for i in range(40):
        assert _runs(settings, f"job{i:03d}") == [f"ok: logged: message {i}"]
    # Each child's queue file holds its queue alone; its runs are in its history file.
    assert [p.name for p in history_files(settings.data_dir)][1:] == [
        "history-0.db",
        "history-1.db",
    ]
    for index in (0, 1):
        queue_tables = table_names(partition_path(settings.data_dir, index, 2))
        assert "dispatch_queue" in queue_tables and not queue_tables & set(HISTORY_TABLES)
        history = sqlite3.connect(history_path(settings.data_dir, index, 2))
        try:
            assert history.execute("SELECT count(*) FROM runs").fetchone()[0] > 0
        finally:
            history.close()


def test_stopping_right_after_start_ends_the_child_without_killing_it(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    # The watchdog used to reap the child as well: when both threads woke at its exit,
    # `stop` could find no exit status, take the child for stuck and kill it (seen on
    # Ctrl-C of the server; this start-stop cycle alone seldom hits that window).
    for _ in range(3):
        proc = DispatcherProcess(settings, child_dispatcher)
        proc.start()
        with caplog.at_level(logging.WARNING):
            proc.stop(drain=True, timeout=30)
        assert "did not stop" not in caplog.text
        assert proc.pids == []


def test_a_second_parent_on_the_same_data_directory_is_refused(
    settings: Settings, process: DispatcherProcess
) -> None:
    process.start()
    other = DispatcherProcess(settings, child_dispatcher, start_timeout_s=0.5)
    with pytest.raises(RuntimeError, match="already running"):
        other.start()
    assert process.pids and all(p.is_alive() for p in [c.process for c in process._children])


def test_with_two_processes_each_child_has_its_own_file_in_fire_order(
    settings: Settings,
) -> None:
    proc = DispatcherProcess(settings, child_dispatcher, processes=2)
    fires = [render_fire(_fire(i)) for i in range(40)]
    proc.publish_payloads(fires)  # not started: the rows wait in the tables
    assert proc.backlog() == 40
    for half in (0, 1):  # each child's fires, in the order they were fired, in its file
        queue = SqliteFireQueue(partition_path(settings.data_dir, half, 2))
        rows = queue._query("SELECT fire_id, shard FROM dispatch_queue ORDER BY seq")
        assert {int(str(shard)) % 2 for _, shard in rows} == {half}
        assert [fire_id for fire_id, _ in rows] == [
            fire[0] for fire in fires if fire[3] % 2 == half
        ]
    assert partition_path(settings.data_dir, 1, 2).name == "dispatch-1.db"


def test_changing_the_number_of_processes_runs_every_queued_fire_once(
    settings: Settings,
) -> None:
    two = DispatcherProcess(settings, child_dispatcher, processes=2, restart_delay_s=0.1)
    try:
        two.start()
        two.publish_many([_fire(i) for i in range(10)])
        assert two.wait_idle(timeout=30)
    finally:
        two.stop(drain=True, timeout=10)
    # Queued while no dispatcher runs: new fires, and a second copy of one that ran.
    two.publish_many([_fire(i) for i in range(10, 20)] + [_fire(3)])
    assert two.backlog() == 11
    one = DispatcherProcess(settings, child_dispatcher, restart_delay_s=0.1)
    try:
        one.start()  # moves the two partitions' fires into the one file first
        assert one.wait_idle(timeout=30)
    finally:
        one.stop(drain=True, timeout=10)
    assert one.backlog() == 0 and two.backlog() == 0
    for i in range(20):  # the copy of fire 3 found its done mark: one run each
        assert _runs(settings, f"job{i:03d}") == [f"ok: logged: message {i}"]
