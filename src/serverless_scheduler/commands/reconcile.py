"""`serverless-scheduler reconcile`: repair drift between local jobs and schedules.

An orphan schedule (its job was deleted but the deletion never reached the schedules)
is deleted after its job's removal notice is queued for the dispatcher, as `serve`
queues one for every deletion: the next start forgets the job's run history and plugin
state. A dry run queues nothing.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "reconcile", help="compare local jobs with their schedules and repair drift"
    )
    parser.add_argument("--data-dir", default=None, help="data directory (default ./.data)")
    parser.add_argument(
        "--dry-run", action="store_true", help="report what would be repaired, change nothing"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from serverless_scheduler_common import Settings, default_registry
    from serverless_scheduler_common.events import JobRemoved
    from serverless_scheduler_common.runtime.dispatcher import removal_row
    from serverless_scheduler_common.runtime.partitions import PartitionQueue, stored_count
    from serverless_scheduler_common.sqlite import db_path_for
    from serverless_scheduler_items.sqlite_repository import SqliteJobRepository
    from serverless_scheduler_schedulers.local_engine import LocalScheduleBackend
    from serverless_scheduler_schedulers.reconcile import reconcile

    from ..datadir import DataDirBusyError, hold_lock

    settings = Settings(data_dir=Path(args.data_dir)) if args.data_dir else Settings()
    # Repairs and progress (a long reconcile says how far it got) go to stderr; the
    # report, on stdout, stays one JSON object.
    logging.basicConfig(level=settings.log_level.upper(), format="%(message)s", stream=sys.stderr)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    # Repairs need local mode stopped: its timer engine only hears of schedule changes
    # made in its own process. A dry run only reads.
    lock = None
    if not args.dry_run:
        try:
            lock = hold_lock(settings.data_dir)
        except DataDirBusyError as exc:
            print(
                f"error: {exc} (its timer engine would not see the repairs); "
                "--dry-run only reports",
                file=sys.stderr,
            )
            return 2
    db_path = db_path_for(settings.data_dir)
    jobs = SqliteJobRepository(db_path)
    backend = LocalScheduleBackend(db_path)
    # The queue of the deleted job's dispatch partition, as `serve` last arranged them.
    queue = PartitionQueue(settings.data_dir, 0, stored_count(settings.data_dir))

    def announce_removed(notice: JobRemoved) -> None:
        # The dispatcher's queue, where `serve` puts a deleted job's notice.
        queue.add_payloads([removal_row(notice)])

    try:
        report = reconcile(
            jobs.list_all(),
            backend,
            default_registry(),
            dry_run=args.dry_run,
            announce_removed=announce_removed,
        )
    finally:
        backend.close()
        queue.close()
        jobs.close()
        if lock is not None:
            lock.close()
    print(json.dumps(report.as_dict()))
    return 1 if report.errors else 0
