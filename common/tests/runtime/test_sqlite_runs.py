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


def _rows(repo: SqliteRunRepository, job_id: str | None = None) -> int:
    where, params = ("WHERE job_id = ?", (job_id,)) if job_id else ("", ())
    return int(str(repo._query(f"SELECT count(*) FROM runs {where}", params)[0][0]))


def test_sweep_deletes_runs_past_the_retention(tmp_path: Path) -> None:
    repo = SqliteRunRepository(tmp_path / "scheduler.db", retention=3)
    for minute in range(40):
        repo.record_many([("alice", run_at(job, minute)) for job in ("j1", "j2", "j3")])
        # The sweep looks at twice the rows recorded: what is past the retention never
        # grows beyond about as many rows as are retained.
        assert _rows(repo) <= 2 * 3 * 3 + 3
    assert [r.summary for r in repo.list("alice", "j2").items] == ["run 39", "run 38", "run 37"]


def test_sweep_waits_until_a_job_passes_the_retention(tmp_path: Path) -> None:
    repo = SqliteRunRepository(tmp_path / "scheduler.db", retention=5)
    for minute in range(5):
        repo.record("alice", run_at("j1", minute))
    assert not repo.sweep.needed and repo.sweep.after == 0  # nothing can be due yet
    repo.record("alice", run_at("j1", 5))
    assert repo.sweep.needed
    assert _rows(repo, "j1") == 5  # the first run went with the sixth's sweep
    assert [r.summary for r in repo.list("alice", "j1").items][-1] == "run 1"


def test_a_run_recorded_again_out_of_start_order_is_replaced(tmp_path: Path) -> None:
    repo = SqliteRunRepository(tmp_path / "scheduler.db")
    first, second = run_at("j1", 1), run_at("j1", 2)
    repo.record("alice", second)  # concurrent runs: the later start finished first
    repo.record("alice", first)
    repo.record("alice", first.model_copy(update={"summary": "ended"}))
    assert [r.summary for r in repo.list("alice", "j1").items] == ["run 2", "ended"]
    assert _rows(repo, "j1") == 2
    third = run_at("j1", 3)
    repo.record_many([("alice", third), ("alice", third.model_copy(update={"summary": "3"}))])
    assert [r.summary for r in repo.list("alice", "j1").items] == ["3", "run 2", "ended"]


def test_forget_job_deletes_its_runs_and_a_job_recreated_starts_afresh(tmp_path: Path) -> None:
    repo = SqliteRunRepository(tmp_path / "scheduler.db", retention=3)
    for minute in range(5):
        repo.record("alice", run_at("j1", minute))
    repo.record("alice", run_at("j2", 0))
    assert repo.forget_job("alice", "j1") == 4  # the oldest went in a sweep already
    assert repo.list("alice", "j1").items == [] and _rows(repo, "j1") == 0
    repo.record("alice", run_at("j1", 9))  # the same id again: a new job's history
    assert [r.summary for r in repo.list("alice", "j1").items] == ["run 9"]
    for minute in range(10):  # the sweep goes round the table
        repo.record("alice", run_at("j2", minute + 1))
    assert _rows(repo, "j1") == 1
    assert repo.forget_job("alice", "j1") == 1 and repo.forget_job("alice", "j1") == 0


def test_forget_job_keeps_another_owners_runs_under_the_same_id(tmp_path: Path) -> None:
    repo = SqliteRunRepository(tmp_path / "scheduler.db")
    for minute in range(4):
        repo.record("alice" if minute % 2 else "bob", run_at("j1", minute))
    assert repo.forget_job("alice", "j1") == 2
    assert repo.list("alice", "j1").items == []
    assert [r.summary for r in repo.list("bob", "j1").items] == ["run 2", "run 0"]
    repo.record("bob", run_at("j1", 4))
    assert [r.summary for r in repo.list("bob", "j1").items] == ["run 4", "run 2", "run 0"]


def test_a_rowid_never_names_two_runs(tmp_path: Path) -> None:
    """Runs link to their job's previous run by rowid: a rowid given again (the table's
    last row deleted, then a run of another job recorded) would let a stale link or a
    reader between two statements reach another job's run."""
    repo = SqliteRunRepository(tmp_path / "scheduler.db")
    repo.record("alice", run_at("j1", 0))
    [(first,)] = repo._query("SELECT max(rowid) FROM runs")
    assert repo.forget_job("alice", "j1") == 1
    repo.record("bob", run_at("j2", 0))
    [(second,)] = repo._query("SELECT max(rowid) FROM runs")
    assert int(str(second)) > int(str(first))
    assert repo.list("alice", "j1").items == []


def test_relinking_keeps_forgotten_jobs_forgotten(tmp_path: Path) -> None:
    from serverless_scheduler_common.runtime.sqlite import RELINK_RUNS

    repo = SqliteRunRepository(tmp_path / "scheduler.db", retention=2)
    for minute in range(4):
        repo.record("alice", run_at("j1", minute))
    repo.forget_job("alice", "j1")
    with repo._tx() as conn:  # as after runs were copied in (`partitions._move_history`)
        conn.execute(
            "INSERT INTO runs (owner_id, job_id, run_id, started_at, data, job_no) "
            "SELECT 'alice', 'j1', 'r-left', '2026-01-01T00:00:00.000000Z', '{}', job_no "
            "FROM job_numbers WHERE job_id = 'j1'"
        )
        for statement in RELINK_RUNS:
            conn.execute(statement)
    assert repo.list("alice", "j1").items == []
    repo.record("alice", run_at("j1", 9))
    assert [r.summary for r in repo.list("alice", "j1").items] == ["run 9"]
