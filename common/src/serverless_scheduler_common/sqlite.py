"""The local-mode database: one SQLite file in WAL mode, shared by every local adapter."""

from __future__ import annotations

import itertools
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

try:
    import fcntl
except ImportError:  # not POSIX: the gate orders this process's threads only
    fcntl = None  # type: ignore[assignment]

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


class WriteGate:
    """Lets one write transaction at a time into a database file, across the threads
    and processes that use this gate, and wakes the next writer as soon as it is free.

    SQLite's own busy handler makes a writer that finds the file locked sleep 1, 2, 5,
    10 ms and more before it tries again: with the timer engine and several dispatcher
    processes writing, the lock then stood free for much of those sleeps (two
    dispatchers used 1.2 of the machine's two cores and did not keep up). Waiting on an
    exclusive `flock` of `<file>.write-lock` instead hands the lock over at once. Use
    through `write_gate(path)` (one per file and process); re-entrant in one thread.

    A connection written through the gate is opened with `autocheckpoint=False` and
    checkpoints after leaving it (`checkpoint_after`): SQLite's automatic checkpoint
    runs inside COMMIT, which would hold the gate (and every other writer) for the
    time it copies the log into the database.
    """

    #: Seconds between this process's checkpoints of the file's write-ahead log.
    checkpoint_interval_s = 0.2

    def __init__(self, db_path: Path | None) -> None:
        self._lock = threading.RLock()
        self._depth = 0
        self._checkpoint_at = 0.0
        self._fd = -1
        if fcntl is not None and db_path is not None:
            lock_file = db_path.with_name(db_path.name + ".write-lock")
            self._fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o600)

    def __enter__(self) -> WriteGate:
        self._lock.acquire()
        if self._depth == 0 and self._fd >= 0:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX)
            except BaseException:
                self._lock.release()
                raise
        self._depth += 1
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._depth -= 1
        if self._depth == 0 and self._fd >= 0:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._lock.release()

    def checkpoint_after(self, conn: sqlite3.Connection) -> None:
        """After a commit, outside the gate: copy the write-ahead log into the database
        when this process last did so `checkpoint_interval_s` ago (PASSIVE: it waits
        for no reader or writer, and another checkpoint under way makes it a no-op)."""
        now = time.monotonic()
        if now - self._checkpoint_at >= self.checkpoint_interval_s:
            self._checkpoint_at = now
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")


_gates: dict[Path, WriteGate] = {}
_gates_lock = threading.Lock()


def write_gate(db_path: str | Path) -> WriteGate:
    """This process's `WriteGate` of the database file `db_path` (an in-memory database,
    which no other process can open, gets a gate of its own without a lock file)."""
    if str(db_path) in ("", ":memory:"):
        return WriteGate(None)
    path = Path(db_path).resolve()
    with _gates_lock:
        gate = _gates.get(path)
        if gate is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            gate = _gates[path] = WriteGate(path)
        return gate


def _forget_gates() -> None:
    """A forked child has its parent's descriptors: its own gates open their own."""
    global _gates_lock
    _gates.clear()
    _gates_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_gates)


def db_path_for(data_dir: str | Path) -> Path:
    """The local-mode database file inside a data directory."""
    return Path(data_dir) / DB_FILENAME


def connect(
    db_path: str | Path, *, check_same_thread: bool = False, autocheckpoint: bool = True
) -> sqlite3.Connection:
    """Open the database in autocommit mode (callers BEGIN explicitly), WAL, busy timeout.

    Creates the file's directory. `synchronous=NORMAL` is durable across process crashes
    in WAL mode (only a power loss can drop the last commits). `autocheckpoint=False`
    for connections that write through a `WriteGate` (they checkpoint after it).
    """
    path = Path(db_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(
        path, timeout=30, check_same_thread=check_same_thread, isolation_level=None
    )
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=30000")
    if not autocheckpoint:
        conn.execute("PRAGMA wal_autocheckpoint=0")
    return conn


class SqliteStore:
    """Base of the local adapters: one connection behind a lock, its own tables.

    Subclasses set `_schema` (CREATE ... IF NOT EXISTS statements), write inside
    `with self._tx() as conn:` and read with `_query` or under `self._lock`.
    """

    _schema: str = ""

    def __init__(self, db_path: str | Path) -> None:
        self.db_path = Path(db_path)
        self._conn = connect(self.db_path, autocheckpoint=False)
        self._lock = threading.RLock()
        self._gate = write_gate(self.db_path)
        self._create_schema()

    def _create_schema(self) -> None:
        """Create this adapter's tables (`_schema`) where missing."""
        with self._lock:
            self._conn.executescript(self._schema)

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE ... COMMIT, ROLLBACK on error), through
        the file's `WriteGate`."""
        with self._lock:
            with self._gate:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self._conn
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                self._conn.execute("COMMIT")
            self._gate.checkpoint_after(self._conn)

    def _query(self, sql: str, params: Sequence[object] = ()) -> list[tuple[object, ...]]:
        with self._lock:
            return list(self._conn.execute(sql, params).fetchall())

    def close(self) -> None:
        with self._lock:
            self._conn.close()
