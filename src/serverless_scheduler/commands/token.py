"""`serverless-scheduler token create|list|revoke`: local API tokens.

A token is shown in clear once, when it is created; the data directory keeps only its
hash. `list` shows ids, users and creation times; `revoke` deletes a token by id (the
16 hex digits after `sst_`) or every token of a user, and requests carrying it are
refused from then on, also by a running `serve`.
"""

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
    create.set_defaults(func=run_create)
    listing = actions.add_parser("list", help="list tokens: id, user, created (no secrets)")
    listing.set_defaults(func=run_list)
    revoke = actions.add_parser("revoke", help="delete a token by id, or every token of a user")
    which = revoke.add_mutually_exclusive_group(required=True)
    which.add_argument("--id", dest="token_id", help="token id (the 16 hex digits after sst_)")
    which.add_argument("--user", help="revoke every token of this user")
    revoke.set_defaults(func=run_revoke)
    for action in (create, listing, revoke):
        action.add_argument("--data-dir", default=None, help="data directory (default ./.data)")


def _store(args: argparse.Namespace, *, create: bool = True) -> Any:
    """The token store of the data directory (None, with an error printed, when
    `create` is false and the directory holds no database)."""
    from serverless_scheduler_common import Settings
    from serverless_scheduler_items.auth import SqliteTokenStore

    settings = Settings(data_dir=Path(args.data_dir)) if args.data_dir else Settings()
    db = settings.data_dir / "scheduler.db"
    if not create and not db.exists():
        print(f"error: --data-dir: no local data in {settings.data_dir}", file=sys.stderr)
        return None
    return SqliteTokenStore(db)


def run_create(args: argparse.Namespace) -> int:
    try:
        token = _store(args).create(args.user)
    except ValueError as exc:
        print(f"error: --user: {exc}", file=sys.stderr)
        return 2
    print(token)
    print(
        f"Token for {args.user!r}; it is not stored in clear and cannot be shown again.",
        file=sys.stderr,
    )
    return 0


def run_list(args: argparse.Namespace) -> int:
    store = _store(args, create=False)
    if store is None:
        return 1
    tokens = store.list_tokens()
    if not tokens:
        print("no tokens (serve creates an admin token when there are none)", file=sys.stderr)
        return 0
    print(f"{'id':<18} {'user':<24} created")
    for token in tokens:
        print(f"{token['token_id']:<18} {token['user']:<24} {token['created_at']}")
    return 0


def run_revoke(args: argparse.Namespace) -> int:
    store = _store(args, create=False)
    if store is None:
        return 1
    if args.user is not None:
        count = store.revoke_user(args.user)
        print(f"revoked {count} token(s) of {args.user!r}", file=sys.stderr)
        return 0 if count else 1
    if not store.revoke(args.token_id):
        print("error: --id: no such token (see: token list)", file=sys.stderr)
        return 1
    print("revoked the token", file=sys.stderr)
    return 0
