"""Local bearer tokens and API Gateway JWT claims."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from starlette.requests import Request

from serverless_scheduler_items.auth import (
    Authenticator,
    Identity,
    JWTClaimsAuthenticator,
    SqliteTokenStore,
)


def _request(headers: dict[str, str] | None = None, event: Any = None) -> Request:
    scope: dict[str, Any] = {
        "type": "http",
        "method": "GET",
        "path": "/",
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
    }
    if event is not None:
        scope["aws.event"] = event
    return Request(scope)


def test_tokens_are_stored_hashed_and_shown_once(tmp_path: Path) -> None:
    db = tmp_path / "scheduler.db"
    store = SqliteTokenStore(db)
    token = store.create("alice")
    store.close()
    secret = token.split("_", 2)[2]  # sst_<id>_<secret>; the secret may hold "_"
    for path in tmp_path.iterdir():  # the database and its WAL
        assert secret.encode() not in path.read_bytes()
    reopened = SqliteTokenStore(db)
    assert reopened.verify(token) == "alice"
    assert reopened.count() == 1


def test_wrong_unknown_and_malformed_tokens_are_refused(tmp_path: Path) -> None:
    store = SqliteTokenStore(tmp_path / "scheduler.db")
    token = store.create("alice")
    other = store.create("bob")
    prefix, token_id, secret = token.split("_", 2)
    flipped = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    assert store.verify(f"{prefix}_{token_id}_{flipped}") is None
    # bob's secret under alice's id
    assert store.verify(f"{prefix}_{token_id}_{other.split('_', 2)[2]}") is None
    assert store.verify(f"{prefix}_{'0' * 16}_{secret}") is None
    for junk in ["", "sst_", token + "x", token.upper(), "' OR 1=1 --"]:
        assert store.verify(junk) is None
    assert store.verify(other) == "bob"


def test_token_store_authenticates_bearer_headers(tmp_path: Path) -> None:
    store = SqliteTokenStore(tmp_path / "scheduler.db")
    assert isinstance(store, Authenticator)
    token = store.create("alice")
    assert store.authenticate(_request({"Authorization": f"Bearer {token}"})) == Identity("alice")
    assert store.authenticate(_request({"Authorization": f"bearer {token}"})) == Identity("alice")
    assert store.authenticate(_request({"Authorization": f"Token {token}"})) is None
    assert store.authenticate(_request()) is None


def test_revoking_a_user_invalidates_its_tokens(tmp_path: Path) -> None:
    store = SqliteTokenStore(tmp_path / "scheduler.db")
    token = store.create("alice")
    assert store.revoke_user("alice") == 1
    assert store.verify(token) is None


@pytest.mark.parametrize("user", ["", "a b", "x" * 129, "semi;colon"])
def test_bad_user_names_are_refused_naming_the_field(tmp_path: Path, user: str) -> None:
    with pytest.raises(ValueError, match="user"):
        SqliteTokenStore(tmp_path / "scheduler.db").create(user)


def _event(claims: Any) -> dict[str, Any]:
    return {"version": "2.0", "requestContext": {"authorizer": {"jwt": {"claims": claims}}}}


def test_jwt_claims_give_the_cognito_sub_as_owner() -> None:
    auth = JWTClaimsAuthenticator()
    assert isinstance(auth, Authenticator)
    claims = {"sub": "5f1c-uuid", "email": "a@example.com", "token_use": "access"}
    assert auth.authenticate(_request(event=_event(claims))) == Identity(
        "5f1c-uuid", "a@example.com"
    )


@pytest.mark.parametrize(
    "event",
    [
        None,
        {"version": "2.0", "requestContext": {}},
        _event({}),
        _event({"sub": ""}),
        _event({"sub": 7}),
        _event("not-a-dict"),
        {"requestContext": {"authorizer": None}},
    ],
)
def test_requests_without_claims_are_unauthenticated(event: Any) -> None:
    # A bearer header alone never counts: API Gateway verified nothing.
    request = _request({"Authorization": "Bearer forged"}, event=event)
    assert JWTClaimsAuthenticator().authenticate(request) is None
