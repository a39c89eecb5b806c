"""Local-mode job store: SQLite (WAL) with a transactional outbox as the change feed.

Every job write and its `JobChange` row commit in the same transaction, so the
schedulers' sync loop (reading `SqliteOutboxChangeFeed`) sees exactly the committed
changes, in commit order, even across a crash or restart.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

from serverless_scheduler_common.errors import (
    AlreadyExistsError,
    NotFoundError,
    VersionConflictError,
)
from serverless_scheduler_common.events import JobChange
from serverless_scheduler_common.job import ScheduledJob
from serverless_scheduler_common.ports import Page
from serverless_scheduler_common.sqlite import SqliteStore

from .pagination import decode_cursor, encode_cursor

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    owner_id TEXT NOT NULL,
    job_id   TEXT NOT NULL,
    version  INTEGER NOT NULL,
    data     TEXT NOT NULL,
    PRIMARY KEY (owner_id, job_id)
);
CREATE TABLE IF NOT EXISTS jobs_outbox (
    position INTEGER PRIMARY KEY AUTOINCREMENT,
    owner_id TEXT NOT NULL,
    job_id   TEXT NOT NULL,
    change   TEXT NOT NULL
);
"""


class _SqliteStore(SqliteStore):
    """The jobs tables; FastAPI runs sync routes in a thread pool, hence the lock."""

    _schema = _SCHEMA


def _dumps(data: dict[str, Any]) -> str:
    # ensure_ascii keeps any string (even a lone surrogate) storable; floats use repr,
    # so they round-trip exactly.
    return json.dumps(data, separators=(",", ":"), ensure_ascii=True)


class SqliteJobRepository(_SqliteStore):
    """`JobRepository` over the `jobs` table of `<data_dir>/scheduler.db`."""

    def _write_change(self, conn: sqlite3.Connection, change: JobChange) -> None:
        conn.execute(
            "INSERT INTO jobs_outbox (owner_id, job_id, change) VALUES (?, ?, ?)",
            (change.owner_id, change.job_id, change.model_dump_json()),
        )

    def create(self, job: ScheduledJob) -> ScheduledJob:
        snapshot = job.snapshot()
        snapshot["version"] = 1
        stored = type(job).model_validate(snapshot)
        with self._tx() as conn:
            try:
                conn.execute(
                    "INSERT INTO jobs (owner_id, job_id, version, data) VALUES (?, ?, ?, ?)",
                    (job.owner_id, job.job_id, 1, _dumps(snapshot)),
                )
            except sqlite3.IntegrityError:
                raise AlreadyExistsError(f"job {job.job_id!r} already exists") from None
            self._write_change(
                conn,
                JobChange(
                    kind="insert",
                    owner_id=job.owner_id,
                    job_id=job.job_id,
                    version=1,
                    new=snapshot,
                ),
            )
        return stored

    def get(self, owner_id: str, job_id: str) -> dict[str, Any]:
        with self._lock:
            row = self._conn.execute(
                "SELECT data FROM jobs WHERE owner_id = ? AND job_id = ?", (owner_id, job_id)
            ).fetchone()
        if row is None:
            raise NotFoundError(f"job {job_id!r} not found")
        data: dict[str, Any] = json.loads(row[0])
        return data

    def list(self, owner_id: str, *, limit: int = 50, cursor: str | None = None) -> Page:
        after = decode_cursor(cursor) if cursor else ""
        with self._lock:
            rows = self._conn.execute(
                "SELECT job_id, data FROM jobs WHERE owner_id = ? AND job_id > ? "
                "ORDER BY job_id LIMIT ?",
                (owner_id, after, limit + 1),
            ).fetchall()
        items = [json.loads(data) for _, data in rows[:limit]]
        next_cursor = encode_cursor(rows[limit - 1][0]) if len(rows) > limit else None
        return Page(items=items, next_cursor=next_cursor)

    def update(self, job: ScheduledJob, *, expected_version: int | None = None) -> ScheduledJob:
        with self._tx() as conn:
            row = conn.execute(
                "SELECT version, data FROM jobs WHERE owner_id = ? AND job_id = ?",
                (job.owner_id, job.job_id),
            ).fetchone()
            if row is None:
                raise NotFoundError(f"job {job.job_id!r} not found")
            current, old_data = row
            if expected_version is not None and current != expected_version:
                raise VersionConflictError(
                    f"job {job.job_id!r} is at version {current}, not {expected_version}",
                    current_version=current,
                )
            old = json.loads(old_data)
            snapshot = job.snapshot()
            snapshot["version"] = current + 1
            snapshot["created_at"] = old["created_at"]
            stored = type(job).model_validate(snapshot)
            snapshot = stored.snapshot()
            conn.execute(
                "UPDATE jobs SET version = ?, data = ? WHERE owner_id = ? AND job_id = ?",
                (current + 1, _dumps(snapshot), job.owner_id, job.job_id),
            )
            self._write_change(
                conn,
                JobChange(
                    kind="modify",
                    owner_id=job.owner_id,
                    job_id=job.job_id,
                    version=current + 1,
                    old=old,
                    new=snapshot,
                ),
            )
        return stored

    def delete(self, owner_id: str, job_id: str, *, expected_version: int | None = None) -> None:
        with self._tx() as conn:
            row = conn.execute(
                "SELECT version, data FROM jobs WHERE owner_id = ? AND job_id = ?",
                (owner_id, job_id),
            ).fetchone()
            if row is None:
                raise NotFoundError(f"job {job_id!r} not found")
            current, old_data = row
            if expected_version is not None and current != expected_version:
                raise VersionConflictError(
                    f"job {job_id!r} is at version {current}, not {expected_version}",
                    current_version=current,
                )
            conn.execute("DELETE FROM jobs WHERE owner_id = ? AND job_id = ?", (owner_id, job_id))
            self._write_change(
                conn,
                JobChange(
                    kind="remove",
                    owner_id=owner_id,
                    job_id=job_id,
                    version=current,
                    old=json.loads(old_data),
                ),
            )

    def list_all(self) -> Iterator[dict[str, Any]]:
        with self._lock:
            rows = self._conn.execute("SELECT data FROM jobs ORDER BY owner_id, job_id").fetchall()
        for (data,) in rows:
            yield json.loads(data)


class SqliteOutboxChangeFeed(_SqliteStore):
    """`ChangeFeed` over the outbox the repository fills; acked rows are deleted."""

    def poll(self, limit: int = 100) -> Sequence[tuple[int, JobChange]]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT position, change FROM jobs_outbox ORDER BY position LIMIT ?", (limit,)
            ).fetchall()
        return [(position, JobChange.model_validate_json(change)) for position, change in rows]

    def ack(self, positions: Sequence[int]) -> None:
        if not positions:
            return
        with self._tx() as conn:
            conn.executemany(
                "DELETE FROM jobs_outbox WHERE position = ?", [(int(p),) for p in positions]
            )

    def pending(self) -> int:
        """How many changes wait for acknowledgement (for health checks and tests)."""
        with self._lock:
            (count,) = self._conn.execute("SELECT COUNT(*) FROM jobs_outbox").fetchone()
        return int(count)
