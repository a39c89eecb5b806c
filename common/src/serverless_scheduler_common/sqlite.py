"""The local-mode database: one SQLite file in WAL mode, shared by every local adapter."""

from __future__ import annotations

import sqlite3
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
