"""The local-mode database: one SQLite file in WAL mode, shared by every local adapter."""

from __future__ import annotations

import itertools
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

DB_FILENAME = "scheduler.db"

#: Rows per multi-row statement (`insert_rows`), largest first: any number of rows is
#: split into these sizes, so one kind of insert has at most a handful of statement
#: texts, each prepared once and then kept in the connection's statement cache.
ROW_CHUNKS = (256, 64, 16, 4, 1)
_insert_sql: dict[tuple[str, int, str, int], str] = {}


def insert_rows(
    conn: sqlite3.Connection,
    head: str,
    rows: Sequence[Sequence[object]],
    *,
    width: int,
    tail: str = "",
) -> None:
    """`conn.executemany(f"{head} VALUES (?, ...){tail}", rows)`, as multi-row statements.

    `head` is the statement up to its VALUES (`INSERT INTO t (a, b)`), `width` the
    values per row, `tail` what follows the rows (an `ON CONFLICT` clause). Each row
    behaves as in its own statement (conflict clauses apply per row, in order).
    Executing a statement once per row makes SQLite start its program per row (open the
    table and each index, read and write `sqlite_sequence` for an AUTOINCREMENT key);
    a multi-row VALUES pays that once per statement: a 600-byte queue row costs about
    40 % fewer instructions. Chunks stay within the connection's limit on bound values
    (999 in SQLite builds before 3.32).
    """
    start, total = 0, len(rows)
    most = conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // max(1, width)
    for size in ROW_CHUNKS:
        if total - start < size or (size > most and size > 1):
            continue
        key = (head, width, tail, size)
        sql = _insert_sql.get(key)
        if sql is None:
            row = "(" + ", ".join("?" * width) + ")"
            sql = _insert_sql[key] = f"{head} VALUES {', '.join([row] * size)}{tail}"
        while total - start >= size:
            chunk = rows[start : start + size]
            conn.execute(sql, list(itertools.chain.from_iterable(chunk)))
            start += size


def changed_since(conn: sqlite3.Connection, before: int) -> int:
    """Rows changed on `conn` since its `total_changes` was `before`.

    `total_changes` is SQLite's count as a C int (`sqlite3_total_changes`), so it wraps
    round after 2**31 changes on one connection: hours for a connection that queues or
    records tens of thousands of fires a second. The difference is taken modulo 2**32,
    which is right across one wrap (no statement here changes that many rows)."""
    return (conn.total_changes - before) & 0xFFFFFFFF


def db_path_for(data_dir: str | Path) -> Path:
    """The local-mode database file inside a data directory."""
    return Path(data_dir) / DB_FILENAME


#: Page size of the files local mode creates (SQLite's default is 4096). Every commit
#: writes each page it changed to the write-ahead log, and each checkpoint copies it on:
#: two system calls per page written, a read and a write per page copied. A dispatcher
#: appends runs, done marks and queue rows in firing order, so a larger page carries
#: more of one batch: a drained fire cost about a tenth less CPU with 16 KB pages than
#: with 4 KB (`benchmarks/dispatch.py --partitions 2`: 25.8-27.9 against 28.5-30.9 us),
#: and at 50,000 fires/s the kernel's share of the CPU fell by about a third
#: (docs/runtime.md, "Sixteenth round"). A file created before keeps its page size.
PAGE_SIZE = 16384


def connect(db_path: str | Path, *, check_same_thread: bool = False) -> sqlite3.Connection:
    """Open the database in autocommit mode (callers BEGIN explicitly), WAL, busy timeout.

    Creates the file's directory (a new file with `PAGE_SIZE` pages).
    `synchronous=NORMAL` is durable across process crashes in WAL mode (only a power
    loss can drop the last commits).
    """
    path = Path(db_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(
        path, timeout=30, check_same_thread=check_same_thread, isolation_level=None
    )
    # Before WAL mode: it applies to a file being created, and only to one.
    conn.execute(f"PRAGMA page_size={PAGE_SIZE}")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=30000")
    conn.create_function("newest_parts", 4, newest_parts, deterministic=True)
    return conn


def newest_parts(times: str, new: str, width: int, keep: int) -> str:
    """SQL `newest_parts(times, new, width, keep)`: the greatest `keep` of the distinct
    `width`-character parts of `times` and `new` (texts of whole parts), in order, side
    by side (the done marks a job keeps, `runtime/sqlite.py`: `recent_upsert`)."""
    parts = {times[i : i + width] for i in range(0, len(times), width)}
    parts.update(new[i : i + width] for i in range(0, len(new), width))
    return "".join(sorted(parts)[-keep:])


class SqliteStore:
    """Base of the local adapters: one connection behind a lock, its own tables.

    Subclasses set `_schema` (CREATE ... IF NOT EXISTS statements), write inside
    `with self._tx() as conn:` and read with `_query` or under `self._lock`.
    """

    _schema: str = ""

    def __init__(self, db_path: str | Path) -> None:
        self.db_path = Path(db_path)
        self._conn = connect(self.db_path)
        #: The file's absolute path (to tell whether two adapters share a file).
        self.file = self.db_path.resolve()
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
