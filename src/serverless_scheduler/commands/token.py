"""`serverless-scheduler token create --user NAME`: a new local API token, shown once."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    parser = sub.add_parser("token", help="manage local API tokens")
    actions = parser.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    create = actions.add_parser(
        "create", help="create a token for a user and print it (it is stored hashed)"
    )
    create.add_argument("--user", required=True, help="user name; owns the jobs it creates")
    create.add_argument("--data-dir", default=None, help="data directory (default ./.data)")
    create.set_defaults(func=run_create)


def run_create(args: argparse.Namespace) -> int:
    from serverless_scheduler_common import Settings
    from serverless_scheduler_items.auth import SqliteTokenStore

    settings = Settings(data_dir=Path(args.data_dir)) if args.data_dir else Settings()
    try:
        token = SqliteTokenStore(settings.data_dir / "scheduler.db").create(args.user)
    except ValueError as exc:
        print(f"error: --user: {exc}", file=sys.stderr)
        return 2
    print(token)
    print(
        f"Token for {args.user!r}; it is not stored in clear and cannot be shown again.",
        file=sys.stderr,
    )
    return 0
