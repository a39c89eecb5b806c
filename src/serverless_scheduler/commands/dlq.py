"""`serverless-scheduler dlq list|redrive|purge`: inspect, replay or drop dead letters.

Locally the dead letters live in `<data-dir>/scheduler.db` (kept 14 days by default,
`SCHEDULER_DEAD_LETTER_RETENTION_DAYS`); `redrive` puts them back on the dispatcher's
durable queue (a running `serve` picks them up within a second, else the next start
does); `purge` drops them without running them. With `--aws`, the commands read a
plugin's SQS dead-letter queue (`--queue-url` or `SCHEDULER_DEAD_LETTER_QUEUE_URL`) and
redrive through the distribution topic (`--topic-arn` or `SCHEDULER_TOPIC_ARN`).
"""

from __future__ import annotations

import argparse
import json
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
                "--fire-id", action="append", default=None, help="only this fire (repeatable)"
            )
        if name == "redrive":
            action.add_argument("--topic-arn", default=None, help="distribution topic ARN (--aws)")
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


def _stores(args: argparse.Namespace) -> tuple[Any, Any] | None:
    """(dead-letter store, publisher for redrive), or None when there is nothing to read."""
    settings = _settings(args)
    if args.aws:
        import boto3

        from serverless_scheduler_common.runtime.sns import SnsPublisher
        from serverless_scheduler_common.runtime.sqs import SqsDeadLetterStore

        queue_url = args.queue_url or settings.dead_letter_queue_url
        if not queue_url:
            raise ValueError("--queue-url (or SCHEDULER_DEAD_LETTER_QUEUE_URL) is required")
        store = SqsDeadLetterStore(boto3.client("sqs", region_name=settings.aws_region), queue_url)
        topic = getattr(args, "topic_arn", None) or settings.topic_arn
        publisher = None
        if topic:
            publisher = SnsPublisher(boto3.client("sns", region_name=settings.aws_region), topic)
        return store, publisher

    from serverless_scheduler_common.runtime.sqlite import (
        SqliteDeadLetterStore,
        SqliteFireQueue,
    )
    from serverless_scheduler_common.sqlite import db_path_for

    db = db_path_for(settings.data_dir)
    if not db.exists():
        return None
    letters = SqliteDeadLetterStore(db, retention_s=settings.dead_letter_retention_s)
    return letters, SqliteFireQueue(db)


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
    store, publisher = stores
    if args.dlq_command == "list":
        letters = store.list(limit=args.limit)
        for letter in letters:
            if args.json:
                print(
                    json.dumps(
                        {
                            "fire_id": letter.fire_id,
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
                    f"{letter.dead_at:%Y-%m-%d %H:%M:%S}Z\t{letter.fire_id}\t{letter.job_type}"
                    f"\tattempts={letter.attempts}\t{letter.error[:120]}"
                )
        if not args.json:
            print(f"{len(letters)} dead-lettered fire(s)", file=sys.stderr)
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

    done = redrive(store, publisher, fire_ids=args.fire_id, limit=args.limit)
    for fire_id in done:
        print(f"redriven\t{fire_id}")
    print(f"{len(done)} fire(s) redriven", file=sys.stderr)
    return 0
