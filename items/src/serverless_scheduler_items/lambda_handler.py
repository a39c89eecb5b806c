"""Lambda entry point of the items service (API Gateway HTTP API -> FastAPI via Mangum).

Wired once per container, so warm invocations reuse the clients and the app. The import
and the wiring run with the cyclic garbage collector paused (see
`serverless_scheduler_common.coldstart`): they only create long-lived objects.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from serverless_scheduler_common.coldstart import collector_paused

log = logging.getLogger(__name__)

#: Settings this handler needs at start-up; Terraform sets SCHEDULER_<FIELD> for each
#: (checked by tests/terraform/test_artifacts.py, see docs/deploy.md).
REQUIRED_SETTINGS: tuple[str, ...] = ("jobs_table", "runs_table", "topic_arn")

with collector_paused():
    from mangum import Mangum

    from serverless_scheduler_common.settings import Settings

    from .aws import build_aws_app

    app = build_aws_app(Settings())
    asgi = Mangum(app, lifespan="off")


def handler(event: Any, context: Any) -> dict[str, Any]:
    """An API Gateway request goes to the app. Any other event (a test invoke from the
    console, a warm-up ping, a misrouted trigger) is logged and answered with a 400
    instead of failing the invocation with the adapter's error."""
    try:
        asgi.infer(event, context)
    except RuntimeError:
        kind = sorted(event)[:8] if isinstance(event, dict) else type(event).__name__
        log.warning("items: not an API Gateway request (event keys %s); ignored", kind)
        return {
            "statusCode": 400,
            "headers": {"content-type": "application/json"},
            "body": json.dumps({"detail": "not an API Gateway HTTP request"}),
        }
    reply: dict[str, Any] = asgi(event, context)
    return reply
