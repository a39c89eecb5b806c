"""`serverless-scheduler job-types`: list installed job types and their plugins."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    parser = sub.add_parser("job-types", help="list installed job types")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from serverless_scheduler_common import default_registry

    registry = default_registry()
    for job_type in registry.known():
        print(f"{job_type}\t{registry.owner_of(job_type)}")
    return 0
