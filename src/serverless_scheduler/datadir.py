"""The data directory's local-mode lock: one running system per directory.

`serve` holds `serve.lock` (next to `scheduler.db`) while local mode runs, in every
dispatcher mode. A second `serve` on the same directory would run a second timer
engine over the same schedules (every job would fire twice), and `reconcile` while a
server runs repairs schedules that the running engine never hears of; both check the
lock and stop with a clear message instead. The kernel drops the lock when its process
ends, however it ends (`kill -9` included), so a crash never leaves a stale lock.
"""

from __future__ import annotations

import fcntl
from pathlib import Path
from typing import IO

from serverless_scheduler_common.sqlite import db_path_for

LOCK_NAME = "serve.lock"


class DataDirBusyError(RuntimeError):
    """Another process runs local mode on this data directory."""


def lock_path(data_dir: str | Path) -> Path:
    return db_path_for(data_dir).with_name(LOCK_NAME)


def hold_lock(data_dir: str | Path) -> IO[bytes]:
    """Take the directory's lock (exclusive, at once) and return the open file that holds
    it: closing the file, or the process ending, releases it. Raises `DataDirBusyError`
    when another process (or another open of the file in this one) holds it."""
    path = lock_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+b")  # noqa: SIM115 - the caller keeps it open to hold the lock
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise DataDirBusyError(
            f"local mode is already running on {path.parent} (another process holds "
            f"{path.name}); stop it first"
        ) from None
    return handle
