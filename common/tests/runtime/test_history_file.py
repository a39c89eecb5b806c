"""A dispatcher whose run history and ledger have a file of their own (a dispatch
partition's `history-<i>.db`): each batch commits there first, then dequeues."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

import pytest

from serverless_scheduler_common.runtime import sqlite as runtime_sqlite
from serverless_scheduler_common.runtime.partitions import table_names
from serverless_scheduler_common.runtime.sqlite import SqliteFireQueue

from .conftest import LocalRig, fire_of, make_job, wait_for

HISTORY = "history-0.db"


def _count(path: Any, table: str) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    finally:
        conn.close()


def test_fires_run_once_with_their_runs_and_marks_in_the_history_file(
    rig_factory: Callable[..., LocalRig],
) -> None:
    rig = rig_factory(history=HISTORY)
    jobs = [make_job(f"j{i}") for i in range(30)]
    rig.dispatcher.start()
    rig.dispatcher.publish_many([fire_of(job) for job in jobs])
    assert rig.dispatcher.wait_idle(timeout=20)
    # A second copy of a completed fire, queued by another process: its done mark is in
    # the other file, and it is found there.
    SqliteFireQueue(rig.db).add_many([fire_of(jobs[3])])
    rig.dispatcher.load_queued()
    assert rig.dispatcher.wait_idle(timeout=20)

    assert sorted(rig.alpha.calls) == sorted(fire_of(job).fire_id for job in jobs)
    assert all(len(rig.runs_of(job)) == 1 for job in jobs)
    history = rig.db.with_name(HISTORY)
    assert _count(history, "runs") == 30 and _count(history, "done_recent") == 30
    assert not {"runs", "fires_done", "done_recent"} & table_names(rig.db)
    assert _count(rig.db, "dispatch_queue") == 0


def test_a_copy_of_a_later_periods_fire_runs_once(rig_factory: Callable[..., LocalRig]) -> None:
    """By its third fire the ledger knows the job's newest mark in memory (it learnt it
    at the second), and each batch's commit must move it on: a copy of the third fire
    queued afterwards is looked up and found done."""
    rig = rig_factory(history=HISTORY)
    job = make_job("j0")
    rig.dispatcher.start()
    for minute in range(3):
        rig.dispatcher.publish_many([fire_of(job, minute)])
        assert rig.dispatcher.wait_idle(timeout=20)
    SqliteFireQueue(rig.db).add_many([fire_of(job, 2)])  # queued again by another process
    rig.dispatcher.load_queued()
    assert rig.dispatcher.wait_idle(timeout=20)
    assert rig.alpha.calls == [fire_of(job, minute).fire_id for minute in range(3)]
    assert len(rig.runs_of(job)) == 3


def test_a_crash_between_the_history_and_the_dequeue_runs_nothing_twice(
    rig_factory: Callable[..., LocalRig], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch's runs and done marks are committed, its fires are still queued: the
    next process dequeues them without running them again."""
    jobs = [make_job(f"j{i}") for i in range(5)]
    first = rig_factory(history=HISTORY)
    first.dispatcher.publish_many([fire_of(job) for job in jobs])  # queued, not started

    def crash(conn: sqlite3.Connection, seqs: Any) -> None:
        raise RuntimeError("killed before the dequeue")

    monkeypatch.setattr(runtime_sqlite, "_dequeue", crash)
    first.dispatcher.start()
    wait_for(lambda: _count(first.db.with_name(HISTORY), "runs") == 5)
    first.dispatcher.stop(drain=False, timeout=5)
    monkeypatch.undo()
    assert sorted(first.alpha.calls) == sorted(fire_of(job).fire_id for job in jobs)
    assert _count(first.db, "dispatch_queue") == 5  # the dequeue did not happen
    assert _count(first.db.with_name(HISTORY), "runs") == 5

    again = rig_factory(history=HISTORY)  # a restarted process over the same files
    again.dispatcher.start()
    assert again.dispatcher.wait_idle(timeout=20)
    assert again.alpha.calls == []
    assert _count(again.db, "dispatch_queue") == 0
    assert all(len(again.runs_of(job)) == 1 for job in jobs)
