"""`serverless-scheduler token create` prints a working token once."""

from __future__ import annotations

from pathlib import Path

import pytest

from serverless_scheduler.cli import main
from serverless_scheduler_items.auth import SqliteTokenStore


def test_token_create_prints_a_token_that_verifies(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["token", "create", "--user", "alice", "--data-dir", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    token = out.strip()
    assert "cannot be shown again" in err
    store = SqliteTokenStore(tmp_path / "scheduler.db")
    assert store.verify(token) == "alice"
    assert main(["token", "create", "--user", "alice", "--data-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out.strip() != token  # a new token each time
    assert store.count() == 2


def test_token_create_rejects_a_bad_user_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["token", "create", "--user", "no spaces", "--data-dir", str(tmp_path)]) == 2
    assert "--user" in capsys.readouterr().err


def test_token_create_needs_a_user(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        main(["token", "create", "--data-dir", str(tmp_path)])
