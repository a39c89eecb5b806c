"""Dispatcher throughput machinery: batched commits, bounded memory, take-over, run ids."""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from serverless_scheduler_common.ids import new_id
from serverless_scheduler_common.ports import Page, RunRepository, render_fire
from serverless_scheduler_common.runs import Run
from serverless_scheduler_common.runtime.core import ConsumerRuntime, FireBatch, run_id
from serverless_scheduler_common.runtime.dispatcher import LocalDispatcher
from serverless_scheduler_common.runtime.sqlite import JobNumbers, SqliteFireLedger, SqliteFireQueue


def test_a_batch_commits_runs_done_marks_and_dequeues_in_one_transaction(
    rig_factory: Any, make_job: Any, fire_of: Any
) -> None:
    job = make_job(policy={"overlap": "allow_all"})
    fires = [fire_of(job, i) for i in range(300)]
    commits: list[str] = []
    rig = rig_factory()
    rig.runtime.ledger.keep_per_job = len(fires)  # every mark of the job, to count them
    conn: sqlite3.Connection = rig.dispatcher.queue._conn
    # Installed and removed only while no dispatcher thread uses the connection:
    # sqlite3's set_* calls hold the GIL while they wait for the connection's mutex,
    # and a statement running in another thread waits for the GIL to call the
    # callback, so changing it under a live thread can deadlock the process.
    conn.set_trace_callback(lambda sql: commits.append(sql) if sql == "COMMIT" else None)
    rig.dispatcher.start()
    rig.dispatcher.publish_many(fires)
    assert rig.dispatcher.wait_idle(timeout=20)
    threads = list(rig.dispatcher._threads)
    rig.dispatcher.stop(timeout=10)
    assert not any(t.is_alive() for t in threads)
    conn.set_trace_callback(None)
    assert sorted(rig.alpha.calls) == sorted(f.fire_id for f in fires)
    assert len(rig.runs_of(job)) == 100  # retention, newest first
    assert rig.runtime.ledger.done_among([f.fire_id for f in fires]) == {f.fire_id for f in fires}
    assert rig.dispatcher.queue.count() == 0
    # 1 insert + a few batches of up to 256, not one transaction per fire
    assert len(commits) <= 10, len(commits)


def _completed(rig: Any, make_job: Any, fire_of: Any) -> tuple[Any, list[Any]]:
    """A job's last fires, completed: as many as the ledger keeps marks of per job (a
    second delivery is one of a job's last fires before a stop)."""
    job = make_job(policy={"overlap": "allow_all"})
    first = [fire_of(job, i) for i in range(rig.runtime.ledger.keep_per_job)]
    rig.dispatcher.publish_many(first)
    assert rig.dispatcher.wait_idle(timeout=10)
    return job, first


def test_a_fire_completed_in_an_earlier_batch_is_not_run_again(
    rig: Any, make_job: Any, fire_of: Any
) -> None:
    job, first = _completed(rig, make_job, fire_of)
    again = [*first, fire_of(job, 99)]
    rig.dispatcher.publish_many(again)
    rig.dispatcher.publish_many([fire_of(job, 99)])  # still queued or done: not twice
    assert rig.dispatcher.wait_idle(timeout=10)
    assert sorted(rig.alpha.calls) == sorted([f.fire_id for f in first] + [again[-1].fire_id])


def test_completed_fires_queued_again_by_another_process_are_not_run_again(
    rig: Any, make_job: Any, fire_of: Any
) -> None:
    job, first = _completed(rig, make_job, fire_of)
    other = SqliteFireQueue(rig.dispatcher.queue.db_path)  # e.g. an engine re-firing
    other.add_many([*first, fire_of(job, 42)])
    rig.dispatcher.load_queued()  # rows read from the table, with their done marks
    assert rig.dispatcher.wait_idle(timeout=10)
    assert sorted(rig.alpha.calls) == sorted(
        [f.fire_id for f in first] + [fire_of(job, 42).fire_id]
    )
    assert rig.dispatcher.queue.count() == 0  # the duplicates were dequeued as done
    items, _ = other.pending_window(with_done=JobNumbers())
    assert items == []


def test_fires_rendered_to_json_run_once_each(rig: Any, make_job: Any, fire_of: Any) -> None:
    job = make_job(policy={"overlap": "allow_all"})
    fires = [fire_of(job, i) for i in range(3)]
    rendered = [render_fire(f) for f in fires]
    rig.dispatcher.publish_payloads(rendered)
    rig.dispatcher.publish_payloads(rendered[:1])  # the same fire again: not run twice
    assert rig.dispatcher.wait_idle(timeout=10)  # counts rows taken from the table
    assert sorted(rig.alpha.calls) == sorted(f.fire_id for f in fires)
    assert rig.dispatcher.queue.count() == 0
    assert len(rig.runs_of(job)) == 3


def test_memory_queue_is_bounded_and_publish_waits_for_room(
    rig_factory: Any, make_job: Any, fire_of: Any, wait_for: Any
) -> None:
    rig = rig_factory()
    dispatcher = LocalDispatcher(
        rig.runtime,
        SqliteFireQueue(rig.db),
        rig.dead,
        workers=1,
        max_backlog=5,
        publish_wait_s=10,
    )
    job = make_job(policy={"overlap": "allow_all"})
    rig.alpha.block = True
    dispatcher.start()
    try:
        dispatcher.publish_many([fire_of(job, i) for i in range(5)])
        assert rig.alpha.entered.wait(5)
        returned = threading.Event()

        def late_publish() -> None:
            dispatcher.publish(fire_of(job, 10))
            returned.set()

        thread = threading.Thread(target=late_publish, daemon=True)
        thread.start()
        time.sleep(0.3)
        assert not returned.is_set()  # back-pressure: the producer waits
        assert dispatcher.backlog() == 5
        rig.alpha.release.set()
        assert returned.wait(10)
        assert dispatcher.wait_idle(timeout=10)
        assert len(rig.alpha.calls) == 6
    finally:
        rig.alpha.release.set()
        dispatcher.stop(drain=False, timeout=5)


def test_past_the_wait_fires_are_kept_in_the_table_and_loaded_later(
    rig_factory: Any, make_job: Any, fire_of: Any
) -> None:
    rig = rig_factory()
    dispatcher = LocalDispatcher(
        rig.runtime,
        SqliteFireQueue(rig.db),
        rig.dead,
        workers=1,
        max_backlog=3,
        publish_wait_s=0.05,
        poll_s=0.05,
    )
    job = make_job(policy={"overlap": "allow_all"})
    rig.alpha.block = True
    dispatcher.start()
    try:
        dispatcher.publish_many([fire_of(job, i) for i in range(3)])
        assert rig.alpha.entered.wait(5)
        started = time.monotonic()
        dispatcher.publish_many([fire_of(job, i) for i in range(3, 20)])
        assert time.monotonic() - started < 2  # did not wait for the consumer
        assert dispatcher.backlog() <= 3  # memory stays bounded
        assert dispatcher.queue.count() == 20  # every fire is durable
        rig.alpha.release.set()
        assert dispatcher.wait_idle(timeout=20)
        assert sorted(rig.alpha.calls) == sorted(fire_of(job, i).fire_id for i in range(20))
        assert dispatcher.queue.count() == 0
    finally:
        rig.alpha.release.set()
        dispatcher.stop(drain=False, timeout=5)


def test_start_loads_a_large_queue_in_bounded_slices(
    rig_factory: Any, make_job: Any, fire_of: Any
) -> None:
    rig = rig_factory()
    job = make_job(policy={"overlap": "allow_all"})
    SqliteFireQueue(rig.db).add_many([fire_of(job, i) for i in range(50)])
    dispatcher = LocalDispatcher(
        rig.runtime, SqliteFireQueue(rig.db), rig.dead, workers=2, max_backlog=7, poll_s=0.05
    )
    dispatcher.start()
    try:
        assert dispatcher.backlog() <= 7
        assert dispatcher.wait_idle(timeout=20)
        assert len(rig.alpha.calls) == 50
        assert dispatcher.queue.count() == 0
    finally:
        dispatcher.stop(drain=False, timeout=5)


def test_a_worker_reads_the_rest_of_a_spilled_queue_itself(
    rig_factory: Any, make_job: Any, fire_of: Any
) -> None:
    """Behind its queue, the dispatcher reads the next slice in the worker that made
    room, between batches, not in the loader thread while a worker runs (each row
    read there handed the interpreter lock back and forth)."""
    rig = rig_factory()
    job = make_job(policy={"overlap": "allow_all"})
    SqliteFireQueue(rig.db).add_many([fire_of(job, i) for i in range(60)])
    queue = SqliteFireQueue(rig.db)
    readers: list[str] = []
    read = queue.pending_window

    def pending_window(**kwargs: Any) -> Any:
        readers.append(threading.current_thread().name)
        return read(**kwargs)

    queue.pending_window = pending_window  # type: ignore[method-assign]
    # poll_s: the loader's own look every so often stays out of the test.
    dispatcher = LocalDispatcher(
        rig.runtime, queue, rig.dead, workers=1, max_backlog=7, batch_size=4, poll_s=60
    )
    dispatcher.start()
    try:
        assert dispatcher.wait_idle(timeout=20)
        assert sorted(rig.alpha.calls) == sorted(fire_of(job, i).fire_id for i in range(60))
        assert dispatcher.queue.count() == 0
    finally:
        dispatcher.stop(drain=False, timeout=5)
    assert readers[0] == threading.current_thread().name  # `start` reads the first slice
    assert len(readers) >= 60 // 7  # in slices that fit
    assert set(readers[1:]) == {"dispatcher-0"}


def test_an_idle_worker_takes_over_the_fires_behind_a_blocked_consumer(
    rig: Any, make_job: Any, make_beta: Any, fire_of: Any, wait_for: Any
) -> None:
    slow = make_job("slow")
    rig.alpha.block = True
    quick = [fire_of(make_beta(f"b{i}")) for i in range(20)]
    # one publish: the first worker claims the whole batch, then blocks on the first fire
    rig.dispatcher.publish_many([fire_of(slow), *quick])
    assert rig.alpha.entered.wait(5)
    wait_for(lambda: len(rig.beta.calls) == 20, timeout=5)
    assert rig.alpha.calls == [fire_of(slow).fire_id]
    rig.alpha.release.set()
    assert rig.dispatcher.wait_idle(timeout=10)


class ListRunRepository:
    """A RunRepository fake: the dispatcher falls back to one call per run."""

    def __init__(self) -> None:
        self.recorded: list[tuple[str, Run]] = []

    def record(self, owner_id: str, run: Run) -> None:
        self.recorded.append((owner_id, run))

    def list(
        self, owner_id: str, job_id: str, *, limit: int = 50, cursor: str | None = None
    ) -> Page:
        items = [r for o, r in reversed(self.recorded) if (o, r.job_id) == (owner_id, job_id)]
        return Page(items=items[:limit], next_cursor=None)

    def forget_job(self, owner_id: str, job_id: str) -> int:
        kept = [(o, r) for o, r in self.recorded if (o, r.job_id) != (owner_id, job_id)]
        removed, self.recorded = len(self.recorded) - len(kept), kept
        return removed


def test_other_run_repositories_are_written_run_by_run(
    tmp_path: Path, rig_factory: Any, make_job: Any, fire_of: Any
) -> None:
    rig = rig_factory()
    runs = ListRunRepository()
    assert isinstance(runs, RunRepository)
    runtime = ConsumerRuntime(
        settings=rig.settings,
        pm=rig.runtime.pm,
        registry=rig.runtime.registry,
        runs=runs,
        ledger=SqliteFireLedger(rig.db),
    )
    dispatcher = LocalDispatcher(runtime, SqliteFireQueue(rig.db), rig.dead, workers=2)
    job = make_job(policy={"overlap": "allow_all"})
    dispatcher.start()
    try:
        dispatcher.publish_many([fire_of(job, i) for i in range(10)])
        assert dispatcher.wait_idle(timeout=10)
    finally:
        dispatcher.stop(drain=False, timeout=5)
    assert len(runs.recorded) == 10
    assert {r.status for _, r in runs.recorded} == {"changed"}
    assert dispatcher.queue.count() == 0


def test_fire_batch_collects_writes_instead_of_storing_them(
    rig: Any, make_job: Any, fire_of: Any
) -> None:
    job = make_job()
    fired = fire_of(job)
    batch = FireBatch(known_done=set())
    result = rig.runtime.handle(fired, batch=batch)
    assert result.disposition == "done"
    assert batch.done == [fired.fire_id]
    assert [(o, r.fire_id) for o, r in batch.runs] == [("alice", fired.fire_id)]
    assert rig.runs_of(job) == []  # nothing written yet
    assert rig.runtime.handle(fired, batch=batch).disposition == "done"  # duplicate
    assert rig.alpha.calls == [fired.fire_id]
    known = FireBatch(known_done={fired.fire_id})
    assert rig.runtime.handle(fired, batch=known).run is None  # known done: skipped


def test_run_ids_have_the_shape_and_order_of_ids() -> None:
    ids = [run_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[0-9a-hjkmnp-tv-z]{26}", i) for i in ids)
    reference = new_id()
    assert run_id()[:8] == reference[:8]  # same millisecond-time prefix encoding
    time.sleep(0.003)
    assert run_id() > reference


def test_run_ids_count_up_within_a_process_and_differ_in_a_forked_child() -> None:
    import os

    first, second = run_id(), run_id()
    assert first[10:18] == second[10:18]  # the process's tag
    assert first < second
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report one id and leave at once
        os.write(write, run_id().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.close(read)
    os.waitpid(pid, 0)
    assert re.fullmatch(r"[0-9a-hjkmnp-tv-z]{26}", child)
    assert child[10:18] != first[10:18]  # a fresh tag, not the parent's sequence
    assert child not in (first, second, run_id())


def test_amortised_pruning_never_shows_more_than_the_retention(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from serverless_scheduler_common.runtime.sqlite import SqliteRunRepository

    repo = SqliteRunRepository(tmp_path / "scheduler.db", retention=20)
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    runs = [
        Run(
            job_id="j1",
            fire_id=f"j1@{m}",
            scheduled_time=t0 + timedelta(minutes=m),
            started_at=t0 + timedelta(minutes=m),
            status="ok",
            summary=f"run {m}",
        )
        for m in range(500)
    ]
    for start in range(0, 500, 50):
        repo.record_many([("alice", run) for run in runs[start : start + 50]])
        shown = repo.list("alice", "j1", limit=1000).items
        assert [r.summary for r in shown] == [f"run {m}" for m in range(start + 49, start + 29, -1)]
    first = repo.list("alice", "j1", limit=15)
    rest = repo.list("alice", "j1", limit=15, cursor=first.next_cursor)
    assert len(first.items) + len(rest.items) == 20 and rest.next_cursor is None
    stored = repo._query("SELECT count(*) FROM runs WHERE job_id = 'j1'")[0][0]
    assert 20 <= int(str(stored)) < 120  # trimmed as it goes, not kept forever


def test_a_long_batch_commits_its_finished_fires_before_it_ends(
    rig_factory: Any, make_job: Any, fire_of: Any, wait_for: Any
) -> None:
    """One worker, one claimed batch of slow fires: their runs show up (and are dequeued)
    while the batch is still running, not all at its end."""
    rig = rig_factory()
    rig.alpha.delay_s = 0.02
    dispatcher = LocalDispatcher(
        rig.runtime, SqliteFireQueue(rig.db), rig.dead, workers=1, commit_after_s=0.05
    )
    job = make_job(policy={"overlap": "allow_all"})
    fires = [fire_of(job, i) for i in range(20)]
    dispatcher.publish_many(fires)  # held in memory: the worker claims all 20 at once
    dispatcher.start()
    try:
        # Runs are stored while the consumer has not yet been called for every fire.
        wait_for(lambda: rig.runs_of(job) and len(rig.alpha.calls) < len(fires), timeout=10)
        assert dispatcher.queue.count() < len(fires)  # dequeued with their runs
        assert dispatcher.wait_idle(timeout=10)
    finally:
        dispatcher.stop(timeout=10)
    assert sorted(rig.alpha.calls) == sorted(f.fire_id for f in fires)  # each once
    assert len(rig.runs_of(job)) == len(fires)
    assert dispatcher.queue.count() == 0
    assert dispatcher.backlog() == 0  # nothing counted in flight twice
