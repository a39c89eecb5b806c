"""The SQLite outbox: one change per committed write, in commit order, until acked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from serverless_scheduler_common.errors import VersionConflictError
from serverless_scheduler_common.ports import ChangeFeed
from serverless_scheduler_items.sqlite_repository import (
    SqliteJobRepository,
    SqliteOutboxChangeFeed,
)


def test_each_write_produces_one_change_in_commit_order(tmp_path: Path, make_job: Any) -> None:
    db = tmp_path / "scheduler.db"
    repo = SqliteJobRepository(db)
    feed = SqliteOutboxChangeFeed(db)  # its own connection, as in local mode
    assert isinstance(feed, ChangeFeed)
    job = make_job(token="s")
    repo.create(job)
    repo.update(job.model_copy(update={"name": "renamed"}), expected_version=1)
    with pytest.raises(VersionConflictError):
        repo.update(job, expected_version=1)  # a failed write leaves no change behind
    repo.delete("alice", job.job_id)

    changes = feed.poll()
    positions = [p for p, _ in changes]
    assert positions == sorted(positions)
    assert [(c.kind, c.version) for _, c in changes] == [
        ("insert", 1),
        ("modify", 2),
        ("remove", 2),
    ]
    insert, modify, remove = (c for _, c in changes)
    assert insert.new == {**job.snapshot(), "version": 1} and insert.old is None
    assert modify.old == insert.new
    assert modify.new is not None and modify.new["name"] == "renamed"
    assert remove.old == modify.new and remove.new is None
    assert all(c.owner_id == "alice" and c.job_id == job.job_id for _, c in changes)
    assert insert.new["token"] == "s"  # the feed carries the real job


def test_unacked_changes_are_redelivered_after_a_restart(tmp_path: Path, make_job: Any) -> None:
    db = tmp_path / "scheduler.db"
    repo = SqliteJobRepository(db)
    for i in range(5):
        repo.create(make_job(name=f"j{i}"))
    feed = SqliteOutboxChangeFeed(db)
    first = feed.poll(limit=2)
    assert len(first) == 2
    feed.ack([p for p, _ in first])
    assert feed.poll(limit=2) == feed.poll(limit=2)  # not acked: delivered again
    feed.close()
    repo.close()

    reopened = SqliteOutboxChangeFeed(db)
    rest = reopened.poll()
    assert [c.new["name"] for _, c in rest if c.new] == ["j2", "j3", "j4"]
    assert reopened.pending() == 3
    reopened.ack([p for p, _ in rest])
    assert reopened.poll() == []
    reopened.ack([])


def test_the_database_runs_in_wal_mode(tmp_path: Path) -> None:
    repo = SqliteJobRepository(tmp_path / "scheduler.db")
    (mode,) = repo._conn.execute("PRAGMA journal_mode").fetchone()
    assert mode == "wal"
