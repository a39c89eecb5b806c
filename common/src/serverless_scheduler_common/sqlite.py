"""The local-mode database: one SQLite file in WAL mode, shared by every local adapter."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

DB_FILENAME = "scheduler.db"


def db_path_for(data_dir: str | Path) -> Path:
    """The local-mode database file inside a data directory."""
    return Path(data_dir) / DB_FILENAME


def connect(db_path: str | Path, *, check_same_thread: bool = False) -> sqlite3.Connection:
    """Open the database in autocommit mode (callers BEGIN explicitly), WAL, busy timeout.

    Creates the file's directory. `synchronous=NORMAL` is durable across process crashes
    in WAL mode (only a power loss can drop the last commits).
    """
    path = Path(db_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(
        path, timeout=30, check_same_thread=check_same_thread, isolation_level=None
    )
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


class SqliteStore:
    """Base of the local adapters: one connection behind a lock, its own tables.

    Subclasses set `_schema` (CREATE ... IF NOT EXISTS statements), write inside
    `with self._tx() as conn:` and read with `_query` or under `self._lock`.
    """

    _schema: str = ""

    def __init__(self, db_path: str | Path) -> None:
        self.db_path = Path(db_path)
        self._conn = connect(self.db_path)
        self._lock = threading.RLock()
        self._create_schema()

    def _create_schema(self) -> None:
        """Create this adapter's tables (`_schema`) where missing."""
        with self._lock:
            self._conn.executescript(self._schema)

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE ... COMMIT, ROLLBACK on error)."""
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
