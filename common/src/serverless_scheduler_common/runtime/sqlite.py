"""Local-mode adapters of the runtime, all in the one `<data_dir>/scheduler.db` file.

Each adapter opens its own connection (WAL mode, `synchronous=NORMAL`: a committed row
survives the process being killed) and creates its own tables. Connections are shared
by the dispatcher's worker threads behind a lock per adapter.
"""

from __future__ import annotations

import base64
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ..events import JobFired
from ..ports import Page
from ..runs import Run
from .ports import DeadLetter

log = logging.getLogger(__name__)

DB_FILENAME = "scheduler.db"


def db_path_for(data_dir: str | Path) -> Path:
    """The local-mode database file inside a data directory."""
    return Path(data_dir) / DB_FILENAME


def connect(db_path: str | Path) -> sqlite3.Connection:
    """Open the shared database file in WAL mode (creating its directory)."""
    path = Path(db_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=30, check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


class _SqliteAdapter:
    """One connection plus a lock; `_tx()` runs a write transaction."""

    _schema: str = ""

    def __init__(self, db_path: str | Path) -> None:
        self.db_path = Path(db_path)
        self._conn = connect(self.db_path)
        self._lock = threading.RLock()
        with self._lock:
            self._conn.executescript(self._schema)

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _query(self, sql: str, params: Sequence[object] = ()) -> list[tuple[object, ...]]:
        with self._lock:
            return list(self._conn.execute(sql, params).fetchall())

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _ts(value: datetime) -> str:
    """UTC timestamp text that sorts like the instant it names."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# -- run history -------------------------------------------------------------------------
class SqliteRunRepository(_SqliteAdapter):
    """`RunRepository` over SQLite: newest first, the last `retention` runs per job."""

    _schema = """
    CREATE TABLE IF NOT EXISTS runs (
        owner_id TEXT NOT NULL,
        job_id TEXT NOT NULL,
        run_id TEXT NOT NULL,
        started_at TEXT NOT NULL,
        data TEXT NOT NULL,
        PRIMARY KEY (owner_id, job_id, run_id)
    );
    CREATE INDEX IF NOT EXISTS runs_by_start ON runs (owner_id, job_id, started_at, run_id);
    """

    def __init__(self, db_path: str | Path, *, retention: int = 100) -> None:
        if retention < 1:
            raise ValueError("retention must be at least 1")
        super().__init__(db_path)
        self.retention = retention

    def record(self, owner_id: str, run: Run) -> None:
        with self._tx() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, ?)",
                (owner_id, run.job_id, run.run_id, _ts(run.started_at), run.model_dump_json()),
            )
            conn.execute(
                """DELETE FROM runs WHERE owner_id = ? AND job_id = ? AND run_id NOT IN (
                       SELECT run_id FROM runs WHERE owner_id = ? AND job_id = ?
                       ORDER BY started_at DESC, run_id DESC LIMIT ?)""",
                (owner_id, run.job_id, owner_id, run.job_id, self.retention),
            )

    def list(
        self, owner_id: str, job_id: str, *, limit: int = 50, cursor: str | None = None
    ) -> Page:
        limit = max(1, min(int(limit), 1000))
        params: list[object] = [owner_id, job_id]
        where = ""
        if cursor:
            started, run_id = _decode_cursor(cursor)
            where = "AND (started_at < ? OR (started_at = ? AND run_id < ?))"
            params += [started, started, run_id]
        rows = self._query(
            f"""SELECT started_at, run_id, data FROM runs WHERE owner_id = ? AND job_id = ?
                {where} ORDER BY started_at DESC, run_id DESC LIMIT ?""",
            [*params, limit + 1],
        )
        items = [Run.model_validate_json(str(row[2])) for row in rows[:limit]]
        next_cursor = None
        if len(rows) > limit:
            last = rows[limit - 1]
            next_cursor = _encode_cursor(str(last[0]), str(last[1]))
        return Page(items=items, next_cursor=next_cursor)


def _encode_cursor(started: str, run_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([started, run_id]).encode()).decode()


def _decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        started, run_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return str(started), str(run_id)
    except (ValueError, TypeError) as exc:
        raise ValueError("cursor: not a cursor returned by this API") from exc


# -- idempotency, in-progress markers, failure counts ---------------------------------------
class SqliteFireLedger(_SqliteAdapter):
    """`FireLedger` over SQLite: completed fire_ids are a unique key, locks expire."""

    _schema = """
    CREATE TABLE IF NOT EXISTS fires_done (fire_id TEXT PRIMARY KEY, done_at REAL NOT NULL);
    CREATE TABLE IF NOT EXISTS run_locks (
        lock_key TEXT PRIMARY KEY, holder TEXT NOT NULL, expires_at REAL NOT NULL
    );
    CREATE TABLE IF NOT EXISTS job_failures (job_key TEXT PRIMARY KEY, failures INTEGER NOT NULL);
    """

    def __init__(self, db_path: str | Path, *, done_ttl_s: int = 30 * 86_400) -> None:
        super().__init__(db_path)
        self.done_ttl_s = done_ttl_s
        self._marks = 0

    def is_done(self, fire_id: str) -> bool:
        return bool(self._query("SELECT 1 FROM fires_done WHERE fire_id = ?", (fire_id,)))

    def mark_done(self, fire_id: str) -> None:
        now = time.time()
        with self._tx() as conn:
            conn.execute("INSERT OR IGNORE INTO fires_done VALUES (?, ?)", (fire_id, now))
            self._marks += 1
            if self._marks % 1000 == 0:  # keep the dedupe window bounded
                conn.execute("DELETE FROM fires_done WHERE done_at < ?", (now - self.done_ttl_s,))

    def acquire(self, key: str, holder: str, *, ttl_s: int) -> bool:
        now = time.time()
        with self._tx() as conn:
            row = conn.execute(
                "SELECT holder, expires_at FROM run_locks WHERE lock_key = ?", (key,)
            ).fetchone()
            if row is not None and row[1] > now:
                return False
            conn.execute(
                "INSERT OR REPLACE INTO run_locks VALUES (?, ?, ?)", (key, holder, now + ttl_s)
            )
            return True

    def release(self, key: str, holder: str) -> None:
        with self._tx() as conn:
            conn.execute("DELETE FROM run_locks WHERE lock_key = ? AND holder = ?", (key, holder))

    def claim_buffer(self, job_key: str, fire_id: str, *, ttl_s: int) -> bool:
        now = time.time()
        key = f"buffer:{job_key}"
        with self._tx() as conn:
            row = conn.execute(
                "SELECT holder, expires_at FROM run_locks WHERE lock_key = ?", (key,)
            ).fetchone()
            if row is not None and row[0] != fire_id and row[1] > now:
                return False
            conn.execute(
                "INSERT OR REPLACE INTO run_locks VALUES (?, ?, ?)", (key, fire_id, now + ttl_s)
            )
            return True

    def release_buffer(self, job_key: str, fire_id: str) -> None:
        self.release(f"buffer:{job_key}", fire_id)

    def add_failure(self, job_key: str) -> int:
        with self._tx() as conn:
            conn.execute(
                """INSERT INTO job_failures VALUES (?, 1)
                   ON CONFLICT(job_key) DO UPDATE SET failures = failures + 1""",
                (job_key,),
            )
            row = conn.execute(
                "SELECT failures FROM job_failures WHERE job_key = ?", (job_key,)
            ).fetchone()
            return int(row[0])

    def reset_failures(self, job_key: str) -> None:
        with self._tx() as conn:
            conn.execute("DELETE FROM job_failures WHERE job_key = ?", (job_key,))

    def release_all_locks(self) -> None:
        """Forget every in-progress marker (local mode: the process that held them is gone)."""
        with self._tx() as conn:
            conn.execute("DELETE FROM run_locks")


# -- dead letters ---------------------------------------------------------------------------
class SqliteDeadLetterStore(_SqliteAdapter):
    """`DeadLetterStore` over SQLite: one row per fire, oldest first."""

    _schema = """
    CREATE TABLE IF NOT EXISTS dead_letters (
        fire_id TEXT PRIMARY KEY,
        job_type TEXT NOT NULL,
        job_id TEXT NOT NULL,
        owner_id TEXT NOT NULL,
        payload TEXT NOT NULL,
        error TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        dead_at TEXT NOT NULL
    );
    """

    def add(self, letter: DeadLetter) -> None:
        with self._tx() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO dead_letters VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    letter.fire_id,
                    letter.job_type,
                    letter.job_id,
                    letter.owner_id,
                    letter.payload,
                    letter.error,
                    letter.attempts,
                    _ts(letter.dead_at),
                ),
            )

    def list(self, *, limit: int = 100) -> list[DeadLetter]:
        rows = self._query(
            "SELECT * FROM dead_letters ORDER BY dead_at, fire_id LIMIT ?", (max(1, limit),)
        )
        return [
            DeadLetter(
                fire_id=str(r[0]),
                job_type=str(r[1]),
                job_id=str(r[2]),
                owner_id=str(r[3]),
                payload=str(r[4]),
                error=str(r[5]),
                attempts=int(str(r[6])),
                dead_at=datetime.strptime(str(r[7]), "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC),
            )
            for r in rows
        ]

    def remove(self, fire_id: str) -> None:
        with self._tx() as conn:
            conn.execute("DELETE FROM dead_letters WHERE fire_id = ?", (fire_id,))


# -- the local dispatcher's durable queue ---------------------------------------------------
@dataclass(frozen=True)
class QueuedFire:
    """A persisted, not yet completed fire."""

    seq: int
    payload: str
    attempt: int
    not_before: float


class SqliteFireQueue(_SqliteAdapter):
    """Accepted fires, written before `publish` returns and deleted once handled.

    Another process (`dlq redrive`) may add rows; the dispatcher picks them up with
    `added_since`.
    """

    _schema = """
    CREATE TABLE IF NOT EXISTS dispatch_queue (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        fire_id TEXT NOT NULL UNIQUE,
        payload TEXT NOT NULL,
        attempt INTEGER NOT NULL DEFAULT 1,
        not_before REAL NOT NULL DEFAULT 0
    );
    """

    def add_many(self, fires: Iterable[JobFired]) -> list[QueuedFire]:
        """Persist fires in one transaction; a fire_id already queued is not added twice."""
        added: list[QueuedFire] = []
        with self._tx() as conn:
            for fired in fires:
                payload = fired.model_dump_json()
                row = conn.execute(
                    """INSERT INTO dispatch_queue (fire_id, payload) VALUES (?, ?)
                       ON CONFLICT(fire_id) DO NOTHING RETURNING seq""",
                    (fired.fire_id, payload),
                ).fetchone()
                if row is not None:
                    added.append(QueuedFire(int(row[0]), payload, 1, 0.0))
        return added

    def publish(self, fired: JobFired) -> None:
        """`Publisher`: queue one fire for whichever dispatcher owns this database."""
        self.add_many([fired])

    def pending(self, *, after_seq: int = 0) -> list[QueuedFire]:
        rows = self._query(
            "SELECT seq, payload, attempt, not_before FROM dispatch_queue WHERE seq > ? "
            "ORDER BY seq",
            (after_seq,),
        )
        return [
            QueuedFire(int(str(r[0])), str(r[1]), int(str(r[2])), float(str(r[3]))) for r in rows
        ]

    def reschedule(self, seq: int, *, attempt: int, not_before: float) -> None:
        with self._tx() as conn:
            conn.execute(
                "UPDATE dispatch_queue SET attempt = ?, not_before = ? WHERE seq = ?",
                (attempt, not_before, seq),
            )

    def delete(self, seqs: Sequence[int]) -> None:
        if not seqs:
            return
        with self._tx() as conn:
            conn.executemany("DELETE FROM dispatch_queue WHERE seq = ?", [(s,) for s in seqs])

    def count(self) -> int:
        return int(str(self._query("SELECT count(*) FROM dispatch_queue")[0][0]))
