"""`serverless-scheduler dlq list|redrive|purge`: inspect, replay or drop dead letters.

Locally the dead letters live in `<data-dir>/scheduler.db` (kept 14 days by default,
`SCHEDULER_DEAD_LETTER_RETENTION_DAYS`); `redrive` puts them back on the dispatcher's
durable queue (a running `serve` picks them up within a second, else the next start
does), each fire carrying its job as stored now (fix the cause, e.g. the job's URL,
then redrive), and drops the letters of deleted jobs; `purge` drops them without
running them. With `--aws`, the commands read a plugin's SQS dead-letter queue
(`--queue-url` or `SCHEDULER_DEAD_LETTER_QUEUE_URL`) and redrive through the
distribution topic (`--topic-arn` or `SCHEDULER_TOPIC_ARN`); with the jobs table
(`--jobs-table` or `SCHEDULER_JOBS_TABLE`) the fires carry the stored jobs as
locally, without it the snapshots they failed with. The AWS region comes from
`SCHEDULER_AWS_REGION` or the queue URL.

A dead-letter queue can also hold what is not a fire: a removal notice whose plugin
kept failing to forget the deleted job, or a message no consumer could read. They are
listed (`kind` `removal` or `unreadable`, under the id `message:<SQS MessageId>` on
AWS) and purged by that id like fires. `redrive` publishes a removal notice again
(`publish_removed`, on AWS) and skips an unreadable letter, saying so: purge it once
its content has been looked at.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    parser = sub.add_parser("dlq", help="list, redrive or purge dead-lettered fires")
    actions = parser.add_subparsers(dest="dlq_command", required=True, metavar="ACTION")
    for name, help_text in (
        ("list", "list dead-lettered fires, oldest first"),
        ("redrive", "publish dead-lettered fires again and remove them from the dead letters"),
        ("purge", "remove dead-lettered fires without running them (--fire-id or --all)"),
    ):
        action = actions.add_parser(name, help=help_text)
        action.add_argument(
            "--data-dir", default=None, help="local data directory (default ./.data)"
        )
        action.add_argument("--aws", action="store_true", help="use the deployment's SQS DLQ")
        action.add_argument("--queue-url", default=None, help="SQS dead-letter queue URL (--aws)")
        action.add_argument(
            "--limit", type=int, default=1000, help="at most this many (default 1000)"
        )
        if name == "list":
            action.add_argument("--json", action="store_true", help="one JSON object per line")
        else:
            action.add_argument(
                "--fire-id",
                "--id",
                dest="fire_id",
                action="append",
                default=None,
                help="only this letter: its id as `list` shows it (repeatable)",
            )
        if name == "redrive":
            action.add_argument("--topic-arn", default=None, help="distribution topic ARN (--aws)")
            action.add_argument(
                "--jobs-table",
                default=None,
                help="jobs table (--aws): redrive with the jobs as stored now",
            )
        if name == "purge":
            action.add_argument(
                "--all", action="store_true", help="every dead letter (up to --limit)"
            )
        action.set_defaults(func=run)


def _settings(args: argparse.Namespace) -> Any:
    from serverless_scheduler_common import Settings

    overrides: dict[str, Any] = {}
    if args.data_dir:
        overrides["data_dir"] = Path(args.data_dir)
    return Settings(**overrides)


_QUEUE_REGION = re.compile(r"^https://sqs[.-]([a-z0-9-]+)\.amazonaws\.com")


def _region(settings: Any, queue_url: str) -> str:
    """`SCHEDULER_AWS_REGION`, else the region the queue URL names."""
    if settings.aws_region:
        return str(settings.aws_region)
    match = _QUEUE_REGION.match(queue_url)
    if match is None:
        raise ValueError("no AWS region: set SCHEDULER_AWS_REGION (the queue URL names none)")
    return match.group(1)


def _stores(args: argparse.Namespace) -> tuple[Any, Any, Any] | None:
    """(dead-letter store, publisher for redrive, the stored job by owner and id), or
    None when there is nothing to read."""
    settings = _settings(args)
    if args.aws:
        import boto3

        from serverless_scheduler_common.runtime.sns import SnsPublisher
        from serverless_scheduler_common.runtime.sqs import SqsDeadLetterStore

        queue_url = args.queue_url or settings.dead_letter_queue_url
        if not queue_url:
            raise ValueError("--queue-url (or SCHEDULER_DEAD_LETTER_QUEUE_URL) is required")
        region = _region(settings, queue_url)
        store = SqsDeadLetterStore(boto3.client("sqs", region_name=region), queue_url)
        topic = getattr(args, "topic_arn", None) or settings.topic_arn
        publisher = None
        if topic:
            publisher = SnsPublisher(boto3.client("sns", region_name=region), topic)
        current = None
        table = getattr(args, "jobs_table", None) or settings.jobs_table
        if table:
            from serverless_scheduler_items.dynamodb_repository import DynamoDBJobRepository

            current = _current(
                DynamoDBJobRepository(boto3.client("dynamodb", region_name=region), table)
            )
        return store, publisher, current

    from serverless_scheduler_common.runtime.partitions import PartitionQueue, stored_count
    from serverless_scheduler_common.runtime.sqlite import SqliteDeadLetterStore
    from serverless_scheduler_common.sqlite import db_path_for
    from serverless_scheduler_items.sqlite_repository import SqliteJobRepository

    db = db_path_for(settings.data_dir)
    if not db.exists():
        return None
    letters = SqliteDeadLetterStore(db, retention_s=settings.dead_letter_retention_s)
    # A redriven fire goes to its job's dispatch partition, as `serve` arranged them.
    queue = PartitionQueue(settings.data_dir, 0, stored_count(settings.data_dir))
    return letters, queue, _current(SqliteJobRepository(db))


def _current(repo: Any) -> Any:
    """The stored job (its snapshot dict) by owner and id, None when it was deleted."""
    from serverless_scheduler_common.errors import NotFoundError

    def current(owner_id: str, job_id: str) -> dict[str, Any] | None:
        try:
            return dict(repo.get(owner_id, job_id))
        except NotFoundError:
            return None

    return current


def _kind(letter: Any) -> str:
    """What a dead letter holds: `fire`, `removal` (a deleted job's notice) or
    `unreadable` (neither; only purging removes it)."""
    from serverless_scheduler_common.events import JobRemoved
    from serverless_scheduler_common.runtime.dispatcher import letter_event

    event = letter_event(letter)
    if event is None:
        return "unreadable"
    return "removal" if isinstance(event, JobRemoved) else "fire"


def run(args: argparse.Namespace) -> int:
    try:
        if args.limit < 1:
            raise ValueError("--limit must be at least 1")
        if args.dlq_command == "purge" and bool(args.fire_id) == bool(args.all):
            raise ValueError("purge: name the fires with --fire-id, or pass --all (not both)")
        stores = _stores(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if stores is None:
        print("no dead letters (no local database yet)")
        return 0
    store, publisher, current = stores
    if args.dlq_command == "list":
        letters = store.list(limit=args.limit)
        kinds: dict[str, int] = {}
        for letter in letters:
            kind = _kind(letter)
            kinds[kind] = kinds.get(kind, 0) + 1
            if args.json:
                print(
                    json.dumps(
                        {
                            "fire_id": letter.fire_id,
                            "kind": kind,
                            "job_type": letter.job_type,
                            "job_id": letter.job_id,
                            "owner_id": letter.owner_id,
                            "attempts": letter.attempts,
                            "dead_at": letter.dead_at.isoformat(),
                            "error": letter.error,
                        }
                    )
                )
            else:
                print(
                    f"{letter.dead_at:%Y-%m-%d %H:%M:%S}Z\t{letter.fire_id}"
                    f"\t{letter.job_type or '-'}\tattempts={letter.attempts}"
                    f"\t{letter.error[:120]}"
                )
        if not args.json:
            others = [
                f"{kinds[kind]} {label}"
                for kind, label in (("removal", "removal notice(s)"), ("unreadable", "unreadable"))
                if kinds.get(kind)
            ]
            more = f" and {', '.join(others)} (purge them by id)" if others else ""
            print(f"{kinds.get('fire', 0)} dead-lettered fire(s){more}", file=sys.stderr)
        return 0
    if args.dlq_command == "purge":
        from serverless_scheduler_common.runtime.dispatcher import purge

        dropped = purge(store, fire_ids=None if args.all else args.fire_id, limit=args.limit)
        for fire_id in dropped:
            print(f"purged\t{fire_id}")
        print(f"{len(dropped)} fire(s) purged", file=sys.stderr)
        return 0
    if publisher is None:
        print("error: --topic-arn (or SCHEDULER_TOPIC_ARN) is required to redrive", file=sys.stderr)
        return 2
    from serverless_scheduler_common.runtime.dispatcher import redrive

    if current is None:
        print(
            "note: no jobs table (--jobs-table or SCHEDULER_JOBS_TABLE): the fires are "
            "redriven with the job snapshots they failed with",
            file=sys.stderr,
        )
    gone: list[str] = []
    notices: list[str] = []
    skipped: list[tuple[str, str]] = []
    done = redrive(
        store,
        publisher,
        fire_ids=args.fire_id,
        limit=args.limit,
        current=current,
        dropped=gone,
        notices=notices,
        skipped=skipped,
    )
    for fire_id in done:
        print(f"redriven\t{fire_id}")
    for fire_id in notices:
        print(f"redriven\t{fire_id}\t(a removal notice)")
    for fire_id in gone:
        print(f"dropped\t{fire_id}\t(its job was deleted)")
    for fire_id, why in skipped:
        print(f"skipped\t{fire_id}\t({why}: see `dlq list`, then `dlq purge --id {fire_id}`)")
    summary = f"{len(done)} fire(s) redriven, {len(gone)} dropped"
    if notices:
        summary += f", {len(notices)} removal notice(s) redriven"
    if skipped:
        summary += f", {len(skipped)} skipped (not fires)"
    print(summary, file=sys.stderr)
    return 0
