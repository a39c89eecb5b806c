"""`serverless-scheduler serve`: local mode on one machine."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    parser = sub.add_parser("serve", help="run local mode (API + web UI + scheduler + plugins)")
    parser.add_argument("--host", default=None, help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port (default 8080)")
    parser.add_argument("--data-dir", default=None, help="data directory (default ./.data)")
    parser.add_argument("--json-logs", action="store_true", help="log JSON lines")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..local import serve

    return serve(host=args.host, port=args.port, data_dir=args.data_dir, log_json=args.json_logs)
