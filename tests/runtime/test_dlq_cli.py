"""`serverless-scheduler dlq list|redrive` on a local data directory."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from serverless_scheduler.cli import main
from serverless_scheduler_common import JobFired, Settings
from serverless_scheduler_common.runtime.local import create_local_dispatcher
from serverless_scheduler_common.runtime.ports import DeadLetter
from serverless_scheduler_common.runtime.sqlite import SqliteDeadLetterStore
from serverless_scheduler_common.sqlite import db_path_for


def _dead_letter(data_dir: Path) -> JobFired:
    fired = JobFired(
        job_type="example_job",
        job_id="job1",
        owner_id="alice",
        scheduled_time=datetime(2026, 5, 1, 9, tzinfo=UTC),
        job={
            "job_type": "example_job",
            "job_id": "job1",
            "owner_id": "alice",
            "name": "hello",
            "schedule": {"kind": "rate", "every": 5, "unit": "minutes"},
            "message": "again",
        },
    )
    SqliteDeadLetterStore(db_path_for(data_dir)).add(
        DeadLetter(
            fire_id=fired.fire_id,
            job_type=fired.job_type,
            job_id=fired.job_id,
            owner_id=fired.owner_id,
            payload=fired.model_dump_json(),
            error="RuntimeError: boom",
            attempts=5,
            dead_at=datetime(2026, 5, 1, 9, 5, tzinfo=UTC),
        )
    )
    return fired


def test_list_then_redrive_runs_the_fire_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fired = _dead_letter(tmp_path)
    assert main(["dlq", "list", "--data-dir", str(tmp_path), "--json"]) == 0
    [line] = capsys.readouterr().out.strip().splitlines()
    listed = json.loads(line)
    assert (listed["fire_id"], listed["attempts"], listed["error"]) == (
        fired.fire_id,
        5,
        "RuntimeError: boom",
    )

    assert main(["dlq", "redrive", "--data-dir", str(tmp_path)]) == 0
    assert f"redriven\t{fired.fire_id}" in capsys.readouterr().out
    assert main(["dlq", "list", "--data-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out == ""

    # the next start of local mode runs it (example plugin, installed in the workspace)
    dispatcher = create_local_dispatcher(Settings(data_dir=tmp_path), workers=1)
    dispatcher.start()
    try:
        assert dispatcher.wait_idle(timeout=10)
    finally:
        dispatcher.stop(drain=True, timeout=5)
    [run] = dispatcher.runtime.runs.list("alice", "job1").items
    assert (run.status, run.summary) == ("ok", "logged: again")


def test_redrive_of_one_fire_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fired = _dead_letter(tmp_path)
    assert main(["dlq", "redrive", "--data-dir", str(tmp_path), "--fire-id", "other"]) == 0
    assert "0 fire(s) redriven" in capsys.readouterr().err
    assert [d.fire_id for d in SqliteDeadLetterStore(db_path_for(tmp_path)).list()] == [
        fired.fire_id
    ]


def test_missing_database_and_bad_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["dlq", "list", "--data-dir", str(tmp_path / "none")]) == 0
    assert "no dead letters" in capsys.readouterr().out
    assert not (tmp_path / "none").exists()
    assert main(["dlq", "list", "--data-dir", str(tmp_path), "--limit", "0"]) == 2
    assert "--limit" in capsys.readouterr().err
    assert main(["dlq", "list", "--aws"]) == 2
    assert "--queue-url" in capsys.readouterr().err
