"""Who is calling: local bearer tokens (hashed in SQLite) or API Gateway JWT claims.

An `Authenticator` turns a request into an `Identity` or None (401). The identity's
`owner_id` scopes every job query, which is what isolates tenants.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from starlette.requests import HTTPConnection

from serverless_scheduler_common.sqlite import SqliteStore

log = logging.getLogger(__name__)

#: Token layout: `sst_<id>_<secret>`; only sha256(secret) is stored, looked up by id.
_TOKEN_RE = re.compile(r"^sst_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")
_USER_RE = re.compile(r"^[A-Za-z0-9_.@+-]{1,128}$")


@dataclass(frozen=True)
class Identity:
    """An authenticated caller; `owner_id` owns the jobs it creates."""

    owner_id: str
    email: str | None = None


@runtime_checkable
class Authenticator(Protocol):
    """Turns a request into an Identity, or None when it carries no valid credentials."""

    def authenticate(self, request: HTTPConnection) -> Identity | None: ...


def bearer_token(request: HTTPConnection) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, if any."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class SqliteTokenStore(SqliteStore):
    """Local API tokens: stored as SHA-256 hashes, shown in clear only by `create`.

    Tokens carry 256 random bits, so a fast hash is enough (there is nothing to
    brute-force); the comparison is constant-time.
    """

    _schema = (
        "CREATE TABLE IF NOT EXISTS api_tokens ("
        " token_id TEXT PRIMARY KEY,"
        " user TEXT NOT NULL,"
        " secret_sha256 TEXT NOT NULL,"
        " created_at TEXT NOT NULL);"
    )

    def create(self, user: str) -> str:
        """Store a new token for `user` and return it in clear (the only time it is)."""
        if not isinstance(user, str) or not _USER_RE.fullmatch(user):
            raise ValueError(
                f"user must be 1-128 characters of letters, digits and _ . @ + - (got {user!r})"
            )
        token_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        with self._lock:
            self._conn.execute(
                "INSERT INTO api_tokens (token_id, user, secret_sha256, created_at) "
                "VALUES (?, ?, ?, ?)",
                (token_id, user, _hash(secret), datetime.now(UTC).isoformat()),
            )
        log.info("created API token %s for user %s", token_id, user)
        return f"sst_{token_id}_{secret}"

    def verify(self, token: str) -> str | None:
        """The user a token belongs to, or None."""
        match = _TOKEN_RE.fullmatch(token or "")
        if match is None:
            return None
        token_id, secret = match.groups()
        with self._lock:
            row = self._conn.execute(
                "SELECT user, secret_sha256 FROM api_tokens WHERE token_id = ?", (token_id,)
            ).fetchone()
        # Compare against a dummy digest when the id is unknown so both paths cost the same.
        user, stored = row if row else (None, "0" * 64)
        if hmac.compare_digest(stored, _hash(secret)) and user is not None:
            return str(user)
        return None

    def list_tokens(self) -> list[dict[str, str]]:
        """Every token's id, user and creation time (never the secret), oldest first."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT token_id, user, created_at FROM api_tokens ORDER BY created_at, token_id"
            ).fetchall()
        return [{"token_id": r[0], "user": r[1], "created_at": r[2]} for r in rows]

    def revoke(self, token: str) -> bool:
        """Delete one token, named by its id (as `list_tokens` shows it) or whole
        (`sst_<id>_<secret>`); True when it existed. Requests carrying it are refused
        from then on."""
        match = _TOKEN_RE.fullmatch(token)
        token_id = match.group(1) if match else token.removeprefix("sst_")
        with self._lock:
            cursor = self._conn.execute("DELETE FROM api_tokens WHERE token_id = ?", (token_id,))
        if cursor.rowcount:
            log.info("revoked API token %s", token_id)
        return bool(cursor.rowcount)

    def revoke_user(self, user: str) -> int:
        """Delete every token of `user`; returns how many were deleted."""
        with self._lock:
            cursor = self._conn.execute("DELETE FROM api_tokens WHERE user = ?", (user,))
        return int(cursor.rowcount)

    def count(self) -> int:
        """How many tokens exist (local mode creates an admin token when there are none)."""
        with self._lock:
            (n,) = self._conn.execute("SELECT COUNT(*) FROM api_tokens").fetchone()
        return int(n)

    def authenticate(self, request: HTTPConnection) -> Identity | None:
        token = bearer_token(request)
        user = self.verify(token) if token else None
        return Identity(owner_id=user) if user else None


class JWTClaimsAuthenticator:
    """Identity from the API Gateway HTTP API JWT authorizer (Cognito `sub`, `email`).

    API Gateway has already verified the token's signature, issuer and audience; Mangum
    hands the raw event over in `request.scope["aws.event"]`. A request without claims
    (no authorizer, or invoked outside API Gateway) is unauthenticated.
    """

    def authenticate(self, request: HTTPConnection) -> Identity | None:
        event: Any = request.scope.get("aws.event")
        try:
            claims = event["requestContext"]["authorizer"]["jwt"]["claims"]
        except (KeyError, TypeError):
            return None
        if not isinstance(claims, dict):
            return None
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub or len(sub) > 256:
            return None
        email = claims.get("email")
        return Identity(owner_id=sub, email=email if isinstance(email, str) else None)
