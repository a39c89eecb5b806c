"""Wiring of the runtime for local mode (one SQLite file, one process)."""

from __future__ import annotations

from collections.abc import Sequence

import pluggy

from ..plugins import build_registry, get_plugin_manager
from ..ports import JobRepository, Notifier, StateStore
from ..registry import JobTypeRegistry
from ..settings import Settings
from ..sqlite import db_path_for
from .core import ConsumerRuntime
from .dispatcher import LocalDispatcher
from .jobcontrol import RepositoryJobControl
from .partitions import PartitionQueue, history_files, history_path
from .sqlite import (
    JobNumbers,
    SqliteDeadLetterStore,
    SqliteFireLedger,
    SqliteRunRepository,
)


def create_local_dispatcher(
    settings: Settings,
    *,
    jobs: JobRepository | None = None,
    pm: pluggy.PluginManager | None = None,
    registry: JobTypeRegistry | None = None,
    plugins: Sequence[object] = (),
    state: StateStore | None = None,
    notifier: Notifier | None = None,
    workers: int | None = None,
    partition: tuple[int, int] = (0, 1),
) -> LocalDispatcher:
    """A `LocalDispatcher` over `<data_dir>/scheduler.db` with production defaults.

    `partition=(i, K)`: the dispatcher of partition i of K (`runtime/partitions.py`):
    its queue is that partition's queue file and its run history, done marks and
    failure counts its history file (both `scheduler.db` when K = 1), dead letters are
    in `scheduler.db`, and its run adapter reads and forgets runs in every history
    file. `jobs` enables `pause_after_failures` (through `RepositoryJobControl`); the run
    history is `dispatcher.runtime.runs` (a `SqliteRunRepository` the API can read).
    Call `start()` once the process is ready and `stop(drain=True)` on shutdown.
    """
    db = db_path_for(settings.data_dir)
    index, count = partition
    own = history_path(settings.data_dir, index, count)
    if pm is None:
        pm = get_plugin_manager(settings=settings, plugins=list(plugins))
    registry = registry or build_registry(pm)
    numbers = JobNumbers(preload=True)  # one cache of the history file's job numbers, shared
    runtime = ConsumerRuntime(
        settings=settings,
        pm=pm,
        registry=registry,
        runs=SqliteRunRepository(
            own,
            retention=settings.runs_retention,
            others=lambda: history_files(settings.data_dir),
            numbers=numbers,
        ),
        ledger=SqliteFireLedger(own, numbers=numbers, sole_marker=True),
        job_control=RepositoryJobControl(jobs, registry) if jobs is not None else None,
        state=state,
        notifier=notifier,
    )
    dead_letters = SqliteDeadLetterStore(db, retention_s=settings.dead_letter_retention_s)
    queue = PartitionQueue(settings.data_dir, index, count)
    dispatcher = LocalDispatcher(runtime, queue, dead_letters, workers=workers)
    if count > 1:
        dispatcher.shard = (index, count)
    return dispatcher
