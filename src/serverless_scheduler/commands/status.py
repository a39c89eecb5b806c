"""`serverless-scheduler status`: is local mode keeping up?

Reads `<data-dir>/scheduler.db` without writing to it, so it works while `serve` runs
(and after it stopped): the jobs and their schedules, job changes not yet applied by
the scheduler, the dispatcher's queue (fires ready to run, retries waiting for their
backoff, and how long the oldest ready fire has waited) and the dead letters.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import sqlite3
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

#: The exit code of `--check` when something needs an operator.
CHECK_FAILED = 3


def register(sub: Any) -> None:
    parser = sub.add_parser("status", help="show whether local mode keeps up (queue, jobs)")
    parser.add_argument("--data-dir", default=None, help="data directory (default ./.data)")
    parser.add_argument("--json", action="store_true", help="one JSON object instead of text")
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit 3 and say why when local mode is not running, a fire is dead-lettered, "
        "or the oldest ready fire has waited longer than --max-wait-s (for monitoring)",
    )
    parser.add_argument(
        "--max-wait-s",
        type=float,
        default=300.0,
        help="with --check: longest acceptable wait of a ready fire (default 300)",
    )
    parser.set_defaults(func=run)


def _one(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...] = ()) -> tuple[Any, ...]:
    """The first row of `sql`; zeros when the table does not exist yet (a data directory
    that an older version or a command that never fired created)."""
    try:
        row = conn.execute(sql, params).fetchone()
    except sqlite3.OperationalError as exc:
        if "no such table" not in str(exc):
            raise
        return (0,) * 8
    if row is None:
        return (0,) * 8
    return tuple(0 if value is None else value for value in row)


def _server(data_dir: Path) -> tuple[bool, int | None]:
    """Whether a `serve` holds the data directory's lock, and its pid.

    The lock itself answers (a shared, non-blocking probe that is released at once),
    not the pid written in the file: after a `kill -9` the file still names the dead
    process, whose pid the system may have given to another one meanwhile.
    """
    from ..datadir import lock_path

    try:
        handle = open(lock_path(data_dir), "rb")  # noqa: SIM115 - closed below
    except OSError:
        return False, None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = handle.read().strip()
            return True, int(text) if text.isdigit() and int(text) > 0 else None
        fcntl.flock(handle, fcntl.LOCK_UN)
    return False, None


def collect(data_dir: Path, *, now: float | None = None) -> dict[str, Any]:
    """The status of the local system stored under `data_dir` (see the module doc)."""
    from serverless_scheduler_common.runtime.partitions import existing_partitions
    from serverless_scheduler_common.sqlite import db_path_for

    now = time.time() if now is None else now
    db = db_path_for(data_dir)
    if not db.exists():
        raise FileNotFoundError(f"no local data at {db} (start local mode with `make run` first)")
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5, isolation_level=None)
    try:
        conn.execute("BEGIN")  # one snapshot for every count (the server goes on writing)
        total, enabled = _one(
            conn, "SELECT count(*), sum(json_extract(data, '$.enabled') = 1) FROM jobs"
        )[:2]
        # A recurring schedule past its end_at stays enabled and not done, but will
        # not fire again: `ended`, not `armed`.
        armed, ended, paused, done, missed = _one(
            conn,
            """SELECT sum(enabled = 1 AND done = 0 AND NOT ended), sum(enabled = 1 AND
                      done = 0 AND ended), sum(enabled = 0), sum(done = 1), sum(missed)
               FROM (SELECT *, coalesce(julianday(json_extract(job, '$.schedule.end_at'))
                                        < julianday(?1, 'unixepoch'), 0) AS ended
                     FROM schedules WHERE deleted = 0)""",
            (now,),
        )[:5]
        (changes,) = _one(conn, "SELECT count(*) FROM jobs_outbox")[:1]
        (dead,) = _one(conn, "SELECT count(*) FROM dead_letters")[:1]
    finally:
        conn.close()
    queued = waiting = notices = 0
    oldest_wait: float | None = None
    for path in existing_partitions(data_dir):  # one file per dispatcher process
        counts, waited = _queue_status(path, now)
        queued, waiting, notices = queued + counts[0], waiting + counts[1], notices + counts[2]
        if waited is not None and (oldest_wait is None or waited > oldest_wait):
            oldest_wait = waited
    running, pid = _server(data_dir)
    return {
        "data_dir": str(data_dir),
        "running": running,
        "pid": pid,
        "jobs": {"total": int(total), "enabled": int(enabled)},
        "schedules": {
            "armed": int(armed),
            "ended": int(ended),
            "paused": int(paused),
            "done": int(done),
            "missed_fires": int(missed),
        },
        "changes_pending": int(changes),
        "queue": {
            "ready": int(queued) - int(waiting),
            "retrying": int(waiting),
            "removal_notices": int(notices),
            "oldest_ready_waited_s": oldest_wait,
        },
        "dead_letters": int(dead),
    }


def _queue_status(path: Path, now: float) -> tuple[tuple[int, int, int], float | None]:
    """(queued, waiting for a retry, removal notices) in one dispatch partition's file,
    and how long its oldest ready fire has waited."""
    from serverless_scheduler_common.runtime.dispatcher import REMOVED_PREFIX

    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5, isolation_level=None)
    try:
        conn.execute("BEGIN")
        queued, waiting, notices, oldest_seq = _one(
            conn,
            """SELECT count(*), sum(not_before > ?1), sum(fire_id LIKE ?2),
                      min(CASE WHEN not_before <= ?1 THEN seq END) FROM dispatch_queue""",
            (now, f"{REMOVED_PREFIX}%"),
        )[:4]
        oldest_wait = None
        if oldest_seq:
            (payload,) = _one(
                conn, "SELECT payload FROM dispatch_queue WHERE seq = ?", (oldest_seq,)
            )[:1]
            oldest_wait = _waited_s(str(payload), now)
        return (int(queued or 0), int(waiting or 0), int(notices or 0)), oldest_wait
    finally:
        conn.close()


def _waited_s(payload: str, now: float) -> float | None:
    """How long ago the queued fire in `payload` was due (None: not a timed fire)."""
    try:
        due = json.loads(payload).get("scheduled_time")
        return round(max(0.0, now - datetime.fromisoformat(str(due)).timestamp()), 3)
    except (ValueError, TypeError, AttributeError):
        return None


def problems(status: dict[str, Any], *, max_wait_s: float) -> list[str]:
    """What needs an operator in `status` (empty: nothing), as the AWS alarms watch
    the same things there: dead letters and fires waiting too long."""
    found = []
    if not status["running"]:
        found.append("local mode is not running")
    if status["dead_letters"]:
        found.append(
            f"{status['dead_letters']} dead-lettered fires (serverless-scheduler dlq list)"
        )
    waited = status["queue"]["oldest_ready_waited_s"]
    if waited is not None and waited > max_wait_s:
        found.append(
            f"the oldest ready fire has waited {waited:.0f} s (more than {max_wait_s:g} s): "
            "the dispatcher does not keep up"
        )
    return found


def _text(status: dict[str, Any]) -> str:
    jobs, schedules, queue = status["jobs"], status["schedules"], status["queue"]
    server = "not running"
    if status["running"]:
        server = "running" if status["pid"] is None else f"running (pid {status['pid']})"
    waited = queue["oldest_ready_waited_s"]
    behind = "" if waited is None else f"; the oldest has waited {waited:.1f} s"
    lines = [
        f"data directory: {status['data_dir']}",
        f"local mode:     {server}",
        f"jobs:           {jobs['total']} ({jobs['enabled']} enabled)",
        f"schedules:      {schedules['armed']} armed, {schedules['paused']} paused, "
        f"{schedules['done']} done (one-off), {schedules['ended']} past their end_at; "
        f"{schedules['missed_fires']} fires skipped as older than their catch-up window",
        f"job changes:    {status['changes_pending']} not yet applied by the scheduler",
        f"queue:          {queue['ready']} fires ready{behind}; "
        f"{queue['retrying']} waiting to be retried",
        f"dead letters:   {status['dead_letters']} (serverless-scheduler dlq list)",
    ]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from serverless_scheduler_common import Settings

    settings = Settings(data_dir=Path(args.data_dir)) if args.data_dir else Settings()
    try:
        status = collect(settings.data_dir)
    except (FileNotFoundError, sqlite3.Error) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(status) if args.json else _text(status))
    if args.check:
        found = problems(status, max_wait_s=args.max_wait_s)
        for problem in found:
            print(f"problem: {problem}", file=sys.stderr)
        return CHECK_FAILED if found else 0
    return 0
