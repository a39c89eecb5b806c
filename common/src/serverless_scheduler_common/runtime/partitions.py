"""Dispatch partitions: SQLite files of their own for each dispatcher process.

With one dispatcher process (the default) its queue, run history, done marks and
failure counts are in `scheduler.db`, as everything else. With K > 1
(`SCHEDULER_DISPATCHER_PROCESSES`), the fires of a job go to partition
`fire_shard(job_id) % K`, and partition i keeps them in two files of its own beside
`scheduler.db`:

- `dispatch-<i>.db`, its queue: the engine's process queues fires there and the
  partition's dispatcher dequeues them;
- `history-<i>.db`, its run history, done marks, failure counts and deleted-job marks,
  written by the partition's dispatcher (the API reads runs there; deleting a job
  deletes its runs in every history file).

Each dispatcher process commits a batch in its history file (runs, done marks), then
dequeues it in its queue file. The dispatchers no longer take turns with each other,
with the engine's last-fired marks and with the API for one write lock (measured: at
50,000 fires/s that lock was held 95 % of the time). The history has a file of its own
because a connection drops every page it caches whenever another process commits to
its file: with the engine queuing into the same file several times a second, each
batch read its indexes back, and a fire cost more as the history grew (at 50,000
fires/s the dispatchers fell behind after 30-40 s; with the history apart they held a
minute, `docs/runtime.md`, fourteenth round). A crash between the two commits leaves
the batch queued with its done marks: it is dequeued without running again.

What is shared stays in `scheduler.db`: jobs, schedules, the change outbox, plugin
state, tokens and dead letters (rare writes, listed and redriven in one place).

Changing K between starts is allowed: `arrange(data_dir, K)` runs before the
dispatchers start and moves queued fires to the partition their job now belongs to,
and copies the done marks and deleted-job marks to every partition's history, and each
failure count to its job's (so a fire queued twice is still run once). Run history
stays where it was written; the run list reads every history file present, and
forgetting a deleted job deletes its runs in all of them. A data directory of the
earlier layout (history tables inside `dispatch-<i>.db`) has them moved to
`history-<i>.db` on the first start.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from ..events import JobFired
from ..ports import RenderedFire, fire_shard
from ..sqlite import connect, db_path_for
from .sqlite import (
    RELINK_RUNS,
    QueuedFire,
    SqliteFireQueue,
    copy_done_marks,
    copy_recent_marks,
    number_new_jobs,
)

log = logging.getLogger(__name__)

_FILE = re.compile(r"^dispatch-(0|[1-9][0-9]*)\.db$")
_HISTORY_FILE = re.compile(r"^history-(0|[1-9][0-9]*)\.db$")

#: The tables of a dispatcher's history (`history_path`): runs and the ledger's.
HISTORY_TABLES = (
    "runs",
    "fires_done",
    "done_recent",
    "job_failures",
    "jobs_removed",
    "job_numbers",
)

#: Tables copied to every partition when the number of partitions changes (what a
#: dispatcher reads to decide whether to run a fire), with the statements that merge
#: them (job numbers are each file's own: the copies are numbered by job_id). Failure
#: counts go only to their job's partition (`_failure_counts`).
_SHARED_MARKS: dict[str, tuple[str, ...]] = {
    "fires_done": copy_done_marks("main", "src.fires_done"),
    "done_recent": copy_recent_marks("main", "src"),
    "jobs_removed": (
        "INSERT OR IGNORE INTO main.jobs_removed SELECT job_key, removed_at FROM src.jobs_removed",
    ),
}

#: How `_move_history` copies each table of the earlier layout.
_MOVED: dict[str, tuple[str, ...]] = {
    **_SHARED_MARKS,
    # Runs already there (a copy again after a crash) are kept once (looked up by a
    # temporary index), then every run of the file is linked again (`RELINK_RUNS`).
    "runs": (
        number_new_jobs("main", "SELECT job_id FROM src.runs"),
        "CREATE INDEX IF NOT EXISTS main.runs_moving ON runs (job_no, run_id)",
        "INSERT INTO main.runs (owner_id, job_id, run_id, started_at, data, job_no) "
        "SELECT r.owner_id, r.job_id, r.run_id, r.started_at, r.data, n.job_no "
        "FROM src.runs r JOIN main.job_numbers n ON n.job_id = r.job_id "
        "WHERE NOT EXISTS (SELECT 1 FROM main.runs m "
        "WHERE m.job_no = n.job_no AND m.run_id = r.run_id) "
        "ORDER BY r.started_at, r.run_id",  # rowids in start order, as the links
        "DROP INDEX main.runs_moving",
        *RELINK_RUNS,  # unqualified names are main's
    ),
    "job_failures": (
        "INSERT OR REPLACE INTO main.job_failures SELECT job_key, failures FROM src.job_failures",
    ),
}

#: Queued rows moved per transaction by `arrange`.
_MOVE_CHUNK = 5000


def partition_path(data_dir: str | Path, index: int, count: int) -> Path:
    """The file of partition `index` of `count`: `scheduler.db` when there is one
    partition, else `dispatch-<index>.db`."""
    if not 0 <= index < count:
        raise ValueError(f"partition: {index} is not in 0..{count - 1}")
    main = db_path_for(data_dir)
    return main if count == 1 else main.with_name(f"dispatch-{index}.db")


def history_path(data_dir: str | Path, index: int, count: int) -> Path:
    """The history file of partition `index` of `count` (runs, done marks, failure
    counts, deleted-job marks): `scheduler.db` when there is one partition, else
    `history-<index>.db`."""
    queue = partition_path(data_dir, index, count)
    return queue if count == 1 else queue.with_name(f"history-{index}.db")


def history_files(data_dir: str | Path) -> list[Path]:
    """Every file that may hold run history, `scheduler.db` first, then each
    `history-<i>.db` present (also those of a larger K used before)."""
    main = db_path_for(data_dir)
    return [main, *_numbered(main.parent, _HISTORY_FILE)]


def data_files(data_dir: str | Path) -> list[Path]:
    """`scheduler.db` and every partition file present (queues and histories)."""
    main = db_path_for(data_dir)
    return [main, *_numbered(main.parent, _FILE), *_numbered(main.parent, _HISTORY_FILE)]


def _numbered(folder: Path, pattern: re.Pattern[str]) -> list[Path]:
    """The files in `folder` whose names match `pattern`, by their number."""
    found = [
        (int(m.group(1)), path) for path in folder.glob("*.db") if (m := pattern.match(path.name))
    ]
    return [path for _, path in sorted(found)]


def file_partition(path: Path, count: int) -> int | None:
    """The partition `path` holds with `count` partitions (None: none of them, e.g.
    `scheduler.db` when there are several, or `dispatch-3.db` when there are two)."""
    match = _FILE.match(path.name)
    if match is None:
        return 0 if count == 1 else None
    index = int(match.group(1))
    return index if count > 1 and index < count else None


def existing_partitions(data_dir: str | Path) -> list[Path]:
    """Every partition queue file present, `scheduler.db` first (a data directory that
    once ran with more dispatcher processes keeps their files)."""
    main = db_path_for(data_dir)
    return [main, *_numbered(main.parent, _FILE)]


def partition_of(shard: int, count: int) -> int:
    """The partition of a job's fires (`fire_shard(job_id)`) among `count`."""
    return shard % count


def stored_count(data_dir: str | Path) -> int:
    """The number of partitions the data directory was last arranged for (1 if never)."""
    conn = connect(db_path_for(data_dir))
    try:
        return _read_count(conn)
    finally:
        conn.close()


def _read_count(conn: sqlite3.Connection) -> int:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS dispatch_partitions "
        "(id INTEGER PRIMARY KEY CHECK (id = 1), count INTEGER NOT NULL)"
    )
    row = conn.execute("SELECT count FROM dispatch_partitions WHERE id = 1").fetchone()
    return int(row[0]) if row else 1


class PartitionQueue(SqliteFireQueue):
    """The queue of partition `index` of `count` (`partition_path`), which also queues
    fires of other partitions' jobs, in their own files.

    A dispatcher process reads and dequeues its own partition (`count()`, `pending_window`
    and `complete` are this file's); fires it publishes for another partition's job wait
    there for that partition's dispatcher. The engine's process uses partition 0 with
    `count_all()` for the whole queue. With `count=1` this is the plain queue of
    `scheduler.db`.
    """

    def __init__(self, data_dir: str | Path, index: int = 0, count: int = 1) -> None:
        if not 0 <= index < count:
            raise ValueError(f"partition: {index} is not in 0..{count - 1}")
        super().__init__(partition_path(data_dir, index, count))
        self.data_dir = Path(data_dir)
        self.index, self.partitions = index, count
        self._queues: dict[int, SqliteFireQueue] = {index: self}
        self._queues_lock = threading.Lock()

    def partition(self, index: int) -> SqliteFireQueue:
        """The queue of partition `index` (opened on first use)."""
        queue = self._queues.get(index)
        if queue is None:
            with self._queues_lock:  # publishers on several threads: one connection each
                queue = self._queues.get(index)
                if queue is None:
                    queue = self._queues[index] = SqliteFireQueue(
                        partition_path(self.data_dir, index, self.partitions)
                    )
        return queue

    def add_many(self, fires: Iterable[JobFired]) -> list[QueuedFire]:
        """Queue fires in their partitions; returns this partition's new rows."""
        if self.partitions == 1:
            return super().add_many(fires)
        groups: dict[int, list[JobFired]] = defaultdict(list)
        for fired in fires:
            groups[partition_of(fire_shard(fired.job_id), self.partitions)].append(fired)
        mine = groups.pop(self.index, [])
        for index, group in sorted(groups.items()):
            self.partition(index).add_many(group)
        return super().add_many(mine)

    def add_payloads(self, fires: Sequence[RenderedFire]) -> int:
        """Queue rendered fires in their partitions (one transaction per partition, each
        keeping the order of its fires); returns how many rows were added in all."""
        if self.partitions == 1:
            return super().add_payloads(fires)
        groups: dict[int, list[RenderedFire]] = defaultdict(list)
        for fire in fires:
            groups[fire[3] % self.partitions].append(fire)
        added = 0
        for index, group in sorted(groups.items()):
            queue = self if index == self.index else self.partition(index)
            added += SqliteFireQueue.add_payloads(queue, group)
        return added

    def count_all(self, *, due_by: float | None = None) -> int:
        """Queued fires in every partition (only those due by `due_by` when given)."""
        return sum(self.partition(index).count(due_by=due_by) for index in range(self.partitions))

    def close(self) -> None:
        with self._queues_lock:
            others = [q for i, q in self._queues.items() if i != self.index]
            self._queues = {self.index: self}
        for queue in others:
            queue.close()
        super().close()


def arrange(data_dir: str | Path, count: int) -> int:
    """Make the data directory's partition files fit `count` dispatcher processes before
    they start; returns how many queued fires moved.

    Every queued fire whose job belongs to another partition now (K changed, or a row
    left by an earlier layout) moves to that partition's file: inserted there first,
    then deleted here, so a crash in between leaves a copy in both, which runs once (the
    second copy finds the first one's done mark). A queue file of the earlier layout
    has its history tables moved to its history file (`_move_history`). When `count`
    differs from the stored one, every partition's history file gets the done marks and
    deleted-job marks of every history file, and each job's failure count from the
    history that ran it until now (counts left behind by an earlier layout are dropped,
    so a job that recovered meanwhile does not get its old failures back). Nothing else
    runs on these files meanwhile (the caller holds the data directory and no
    dispatcher runs).
    """
    if count < 1:
        raise ValueError("count must be at least 1")
    main = db_path_for(data_dir)
    conn = connect(main)
    try:
        before = _read_count(conn)
    finally:
        conn.close()
    files = existing_partitions(data_dir)
    targets: dict[int, SqliteFireQueue] = {}
    moved = 0
    try:
        for path in files:
            moved += _move_foreign_rows(data_dir, path, count, targets)
    finally:
        for queue in targets.values():
            queue.close()
    if moved:
        log.info("moved %d queued fires to the partition of their job", moved)
    for path in files[1:]:
        if table_names(path) & set(HISTORY_TABLES):
            _move_history(path, path.with_name(path.name.replace("dispatch-", "history-", 1)))
    if before != count:
        histories = history_files(data_dir)
        failures = _planned_failures(main, lambda: _failure_counts(data_dir, histories, before))
        for index in range(count):
            path = history_path(data_dir, index, count)
            mine = [
                (key, n) for key, n in failures.items() if _partition_of_key(key, count) == index
            ]
            _copy_marks(path, histories, mine)
        conn = connect(main)
        try:
            _read_count(conn)
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "INSERT OR REPLACE INTO dispatch_partitions (id, count) VALUES (1, ?)", (count,)
            )
            conn.execute("DELETE FROM dispatch_failures_moving")
            conn.execute("DELETE FROM dispatch_failures_moving_saved")
            conn.execute("COMMIT")
        finally:
            conn.close()
        log.info("dispatch partitions: %d -> %d", before, count)
    _upgrade_histories(data_dir)
    return moved


def _upgrade_histories(data_dir: str | Path) -> None:
    """Give every history file of an earlier version its job numbers here, before the
    dispatchers start: the upgrade of a large run history takes about 5 s per million
    runs, longer than a child may take to start."""
    from .sqlite import SqliteFireLedger, SqliteRunRepository

    for path in history_files(data_dir):
        SqliteFireLedger(path).close()
        SqliteRunRepository(path).close()


def _planned_failures(main: Path, compute: Callable[[], dict[str, int]]) -> dict[str, int]:
    """The failure counts a change of K hands out (`compute()`), saved in `main` until
    the change is recorded: a change interrupted after rewriting some history files
    hands out the same counts when it runs again (computing them again from half
    rewritten files would lose some)."""
    conn = connect(main)
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS dispatch_failures_moving "
            "(job_key TEXT PRIMARY KEY, failures INTEGER NOT NULL)"
        )
        conn.execute(
            "CREATE TABLE IF NOT EXISTS dispatch_failures_moving_saved "
            "(id INTEGER PRIMARY KEY CHECK (id = 1))"
        )
        if conn.execute("SELECT 1 FROM dispatch_failures_moving_saved").fetchone():
            rows = conn.execute("SELECT job_key, failures FROM dispatch_failures_moving")
            return {str(key): int(n) for key, n in rows}
        failures = compute()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("DELETE FROM dispatch_failures_moving")
        conn.executemany("INSERT INTO dispatch_failures_moving VALUES (?, ?)", failures.items())
        conn.execute("INSERT OR REPLACE INTO dispatch_failures_moving_saved (id) VALUES (1)")
        conn.execute("COMMIT")
        return failures
    finally:
        conn.close()


def _row_shard(payload: str) -> int:
    """The shard of a queued row's job, read from its payload (0 when unreadable)."""
    try:
        job_id = json.loads(payload).get("job_id")
    except (ValueError, AttributeError):
        return 0
    return fire_shard(job_id) if isinstance(job_id, str) else 0


def _move_foreign_rows(
    data_dir: str | Path, path: Path, count: int, targets: dict[int, SqliteFireQueue]
) -> int:
    """Move the queued rows of `path` that belong to another partition (see `arrange`).

    A row from before the shard column counts as shard 0: for those (and rows of shard
    0 anyway) the job is read from the payload, so each goes to its job's partition.
    """
    index = file_partition(path, count)
    source = SqliteFireQueue(path)
    moved, after = 0, 0
    try:
        while True:
            rows = source._query(
                "SELECT seq, fire_id, payload, attempt, not_before, shard FROM dispatch_queue "
                "WHERE seq > ?4 AND (?1 < 0 OR shard % ?2 != ?1 OR shard = 0) "
                "ORDER BY seq LIMIT ?3",
                (-1 if index is None else index, count, _MOVE_CHUNK, after),
            )
            if not rows:
                return moved
            after = int(str(rows[-1][0]))
            groups: dict[int, list[tuple[object, ...]]] = defaultdict(list)
            leaving: list[int] = []
            reshard: list[tuple[int, int]] = []
            for seq, fire_id, payload, attempt, not_before, stored in rows:
                shard = int(str(stored)) or _row_shard(str(payload))
                target = partition_of(shard, count)
                if target == index:
                    if shard != int(str(stored)):
                        reshard.append((shard, int(str(seq))))
                    continue
                groups[target].append((fire_id, payload, attempt, not_before, shard))
                leaving.append(int(str(seq)))
            for target, group in sorted(groups.items()):
                queue = targets.get(target)
                if queue is None:
                    queue = targets[target] = SqliteFireQueue(
                        partition_path(data_dir, target, count)
                    )
                queue.add_rows(group)
            source.delete(leaving)
            if reshard:
                with source._tx() as conn:
                    conn.executemany("UPDATE dispatch_queue SET shard = ? WHERE seq = ?", reshard)
            moved += len(leaving)
            if leaving and moved % (_MOVE_CHUNK * 20) < len(leaving):
                log.info("moving queued fires to their partitions: %d so far", moved)
    finally:
        source.close()


def _partition_of_key(key: str, count: int) -> int:
    """The partition of a ledger job key (`<owner_id>/<job_id>`)."""
    return partition_of(fire_shard(key.split("/", 1)[-1]), count)


def _failure_counts(data_dir: str | Path, files: Sequence[Path], before: int) -> dict[str, int]:
    """Each job's failure count, from the history file of the partition that ran its
    fires with `before` partitions (a count in any other file was left there by an
    earlier layout)."""
    counts: dict[str, int] = {}
    for path in files:
        if not path.exists():
            continue
        conn = connect(path)
        try:
            present = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'job_failures'"
            ).fetchone()
            rows = (
                conn.execute("SELECT job_key, failures FROM job_failures").fetchall()
                if present
                else []
            )
        finally:
            conn.close()
        for key, failures in rows:
            home = history_path(data_dir, _partition_of_key(str(key), before), before)
            if home.resolve() == path.resolve():
                counts[str(key)] = int(failures)
    return counts


def table_names(path: Path) -> set[str]:
    """The names of the tables in the SQLite file `path`."""
    conn = connect(path)
    try:
        return {
            str(row[0])
            for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
    finally:
        conn.close()


def _move_history(source: Path, target: Path) -> None:
    """Move the history tables of a queue file of the earlier layout (`source`,
    `dispatch-<i>.db`) to the history file `target` (`history-<i>.db`): copied in one
    transaction, then dropped from `source`. A crash in between copies them again at
    the next start (rows already there are kept once)."""
    from .sqlite import SqliteFireLedger, SqliteRunRepository

    SqliteFireLedger(target).close()  # its tables
    SqliteRunRepository(target).close()
    present = table_names(source) & set(HISTORY_TABLES)
    conn = connect(target)
    try:
        _merge_from(conn, source, _MOVED)
    finally:
        conn.close()
    conn = connect(source)
    try:
        for table in HISTORY_TABLES:
            if table in present:
                conn.execute(f"DROP TABLE {table}")
    finally:
        conn.close()
    conn = connect(target)
    try:  # the copy may have been large: its write-ahead log goes back into the file
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    log.info("moved the run history and done marks of %s to %s", source.name, target.name)


def _copy_marks(target: Path, files: Sequence[Path], failures: Sequence[tuple[str, int]]) -> None:
    """Give the history file `target` the done marks and deleted-job marks of `files`,
    and exactly the failure counts `failures` (its tables are created first)."""
    from .sqlite import SqliteFireLedger

    SqliteFireLedger(target).close()  # its tables
    conn = connect(target)
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("DELETE FROM job_failures")
            conn.executemany("INSERT INTO job_failures VALUES (?, ?)", failures)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        for path in files:
            if path.resolve() != target.resolve() and path.exists():
                _merge_from(conn, path, _SHARED_MARKS)
    finally:
        conn.close()


def _merge_from(
    conn: sqlite3.Connection, source: Path, statements: dict[str, tuple[str, ...]]
) -> None:
    """Run, in one transaction on `conn`, the statements of each table of `statements`
    that `source` has (attached as `src`, reading from `src.<table>`)."""
    conn.execute("ATTACH DATABASE ? AS src", (str(source),))
    try:
        present = {
            str(row[0])
            for row in conn.execute("SELECT name FROM src.sqlite_master WHERE type = 'table'")
        }
        conn.execute("BEGIN IMMEDIATE")
        try:
            for table, table_statements in statements.items():
                if table in present:
                    for statement in table_statements:
                        conn.execute(statement)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    finally:
        conn.execute("DETACH DATABASE src")
