"""SqliteRunRepository: newest first, pagination, retention per job."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from serverless_scheduler_common import Run
from serverless_scheduler_common.ports import RunRepository
from serverless_scheduler_common.runtime.sqlite import SqliteRunRepository

from .conftest import run_at


def test_newest_first_with_cursor_pagination(tmp_path: Path) -> None:
    repo = SqliteRunRepository(tmp_path / "scheduler.db")
    assert isinstance(repo, RunRepository)
    for minute in [3, 1, 4, 0, 2]:
        repo.record("alice", run_at("j1", minute))
    repo.record("alice", run_at("j2", 9))
    first = repo.list("alice", "j1", limit=2)
    assert [r.summary for r in first.items] == ["run 4", "run 3"]
    second = repo.list("alice", "j1", limit=2, cursor=first.next_cursor)
    assert [r.summary for r in second.items] == ["run 2", "run 1"]
    third = repo.list("alice", "j1", limit=2, cursor=second.next_cursor)
    assert [r.summary for r in third.items] == ["run 0"]
    assert third.next_cursor is None
    assert repo.list("bob", "j1").items == []


def test_record_replaces_by_run_id(tmp_path: Path) -> None:
    repo = SqliteRunRepository(tmp_path / "scheduler.db")
    run = run_at("j1", 0)
    repo.record("alice", run)
    repo.record("alice", run.model_copy(update={"status": "changed", "summary": "done"}))
    [stored] = repo.list("alice", "j1").items
    assert (stored.run_id, stored.status, stored.summary) == (run.run_id, "changed", "done")


def test_retention_keeps_the_newest_runs_per_job(tmp_path: Path) -> None:
    repo = SqliteRunRepository(tmp_path / "scheduler.db", retention=3)
    for minute in range(6):
        repo.record("alice", run_at("j1", minute))
    repo.record("alice", run_at("j2", 0))
    assert [r.summary for r in repo.list("alice", "j1").items] == ["run 5", "run 4", "run 3"]
    assert len(repo.list("alice", "j2").items) == 1


def test_bad_cursor_is_a_clear_error(tmp_path: Path) -> None:
    repo = SqliteRunRepository(tmp_path / "scheduler.db")
    with pytest.raises(ValueError, match="cursor"):
        repo.list("alice", "j1", cursor="not-a-cursor")


def test_a_run_is_stored_as_its_models_json(tmp_path: Path) -> None:
    repo = SqliteRunRepository(tmp_path / "runs.db")
    start = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
    run = Run(
        job_id="j",
        fire_id="j@2026-03-01T12:00:00Z",
        scheduled_time=start,
        started_at=start,
        finished_at=start + timedelta(seconds=2),
        status="changed",
        summary="1 line changed: «é»",
        detail="+ new\n- old",
    )
    repo.record("alice", run)
    [(data,)] = repo._query("SELECT data FROM runs")
    assert data == run.model_dump_json()
    assert repo.list("alice", "j").items == [run]
