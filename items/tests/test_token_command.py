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


def test_token_list_shows_no_secret_and_revoke_refuses_the_token_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = ["--data-dir", str(tmp_path)]
    assert main(["token", "list", "--data-dir", str(tmp_path / "none")]) == 1
    assert "no local data" in capsys.readouterr().err
    assert not (tmp_path / "none").exists()

    tokens = []
    for user in ("alice", "alice", "bob"):
        assert main(["token", "create", "--user", user, *data]) == 0
        tokens.append(capsys.readouterr().out.strip())
    store = SqliteTokenStore(tmp_path / "scheduler.db")  # as a running server holds it

    assert main(["token", "list", *data]) == 0
    listed = capsys.readouterr().out
    ids = [token.split("_")[1] for token in tokens]
    assert all(token_id in listed for token_id in ids)
    assert not any(token.split("_", 2)[2] in listed for token in tokens)  # no secret
    assert listed.count("alice") == 2 and "bob" in listed

    assert main(["token", "revoke", "--id", tokens[0], *data]) == 0  # the whole token works too
    assert store.verify(tokens[0]) is None
    assert store.verify(tokens[1]) == "alice"
    assert main(["token", "revoke", "--id", ids[0], *data]) == 1  # already gone
    assert "no such token" in capsys.readouterr().err
    assert main(["token", "revoke", "--user", "bob", *data]) == 0
    assert store.verify(tokens[2]) is None
    assert [row["user"] for row in store.list_tokens()] == ["alice"]
