"""The queue table has no unique fire_id: a fire queued twice still runs once.

Copies come from an engine re-firing after a crash, a repeated redrive, or another
process queueing a fire the dispatcher already holds. The dispatcher drops a copy whose
fire_id it holds in memory, and the ledger's done marks stop a copy read later.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from serverless_scheduler_common.ports import render_fire
from serverless_scheduler_common.runtime.dispatcher import LocalDispatcher
from serverless_scheduler_common.runtime.sqlite import SqliteFireQueue


def test_the_queue_table_has_no_index_on_fire_ids(rig: Any) -> None:
    with sqlite3.connect(rig.db) as conn:
        indexes = conn.execute("PRAGMA index_list(dispatch_queue)").fetchall()
    assert indexes == []


def _first_copy_running(rig: Any, job: Any, fire_of: Any) -> Any:
    """Publish one fire and wait until its consumer call has started (and blocks)."""
    fired = fire_of(job)
    rig.alpha.block = True
    rig.dispatcher.publish(fired)
    assert rig.alpha.entered.wait(10)  # the first copy is running (held in memory)
    return fired


def test_a_copy_queued_while_the_fire_runs_is_dropped(
    rig: Any, make_job: Any, fire_of: Any
) -> None:
    job = make_job(policy={"overlap": "allow_all"})
    fired = _first_copy_running(rig, job, fire_of)
    other = SqliteFireQueue(rig.db)  # e.g. an engine re-firing after a crash
    other.add_many([fired])
    rig.dispatcher.publish(fired)  # and one handed over in this process
    assert other.count() == 3  # three rows of one fire
    rig.dispatcher.load_queued()
    rig.alpha.release.set()
    assert rig.dispatcher.wait_idle(timeout=10)
    assert rig.alpha.calls == [fired.fire_id]
    assert len(rig.runs_of(job)) == 1
    assert other.count() == 0  # the copies were dequeued


def test_copies_queued_before_a_start_run_once(
    rig_factory: Any, make_job: Any, fire_of: Any
) -> None:
    rig = rig_factory()
    job = make_job(policy={"overlap": "allow_all"})
    fires = [fire_of(job, i) for i in range(3)]
    queue = SqliteFireQueue(rig.db)
    queue.add_many(fires)
    queue.add_many(fires[:2])  # a second copy of two of them (a crash before the marks)
    queue.add_payloads([render_fire(fires[0])])
    assert queue.count() == 6
    rig.dispatcher.start()
    assert rig.dispatcher.wait_idle(timeout=10)
    assert sorted(rig.alpha.calls) == sorted(f.fire_id for f in fires)
    assert queue.count() == 0


def test_a_copy_of_a_failing_fire_does_not_add_attempts(
    rig: Any, make_job: Any, fire_of: Any
) -> None:
    rig.alpha.failing = True
    fired = _first_copy_running(rig, make_job(policy={"overlap": "allow_all"}), fire_of)
    SqliteFireQueue(rig.db).add_many([fired])
    rig.dispatcher.load_queued()
    rig.alpha.release.set()
    assert rig.dispatcher.wait_idle(timeout=10)
    # max_attempts=3 for the one fire, then one dead letter; the copy ran nothing
    assert rig.alpha.calls == [fired.fire_id] * 3
    assert [letter.fire_id for letter in rig.dead.list()] == [fired.fire_id]
    assert rig.dispatcher.queue.count() == 0


def test_a_table_of_the_earlier_layout_still_ignores_a_queued_fire_id(
    rig_factory: Any, make_job: Any, fire_of: Any
) -> None:
    rig = rig_factory()
    with sqlite3.connect(rig.db) as conn:
        conn.execute("DROP TABLE dispatch_queue")
        conn.execute(
            """CREATE TABLE dispatch_queue (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                fire_id TEXT NOT NULL UNIQUE,
                payload TEXT NOT NULL,
                attempt INTEGER NOT NULL DEFAULT 1,
                not_before REAL NOT NULL DEFAULT 0
            )"""
        )
    job = make_job(policy={"overlap": "allow_all"})
    fires = [fire_of(job, i) for i in range(3)]
    queue = SqliteFireQueue(rig.db)
    assert [q.fire_id for q in queue.add_many(fires[:1])] == [fires[0].fire_id]
    added = queue.add_many(fires)  # the first is queued already: only two are new
    assert [q.fire_id for q in added] == [f.fire_id for f in fires[1:]]
    assert [q.seq for q in added] == [q.seq for q in queue.pending()][1:]  # rows' own seqs
    assert queue.add_payloads([render_fire(fires[2])]) == 0
    dispatcher = LocalDispatcher(rig.runtime, queue, rig.dead, workers=2, poll_s=0.05)
    dispatcher.start()
    try:
        assert dispatcher.wait_idle(timeout=10)
    finally:
        dispatcher.stop(timeout=5)
    assert sorted(rig.alpha.calls) == sorted(f.fire_id for f in fires)
    assert queue.count() == 0
