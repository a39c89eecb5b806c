"""Lambda entry point of the items service (API Gateway HTTP API -> FastAPI via Mangum).

Wired once per container, so warm invocations reuse the clients and the app. The import
and the wiring run with the cyclic garbage collector paused (see
`serverless_scheduler_common.coldstart`): they only create long-lived objects.
"""

from __future__ import annotations

from serverless_scheduler_common.coldstart import collector_paused

#: Settings this handler needs at start-up; Terraform sets SCHEDULER_<FIELD> for each
#: (checked by tests/terraform/test_artifacts.py, see docs/deploy.md).
REQUIRED_SETTINGS: tuple[str, ...] = ("jobs_table", "runs_table", "topic_arn")

with collector_paused():
    from mangum import Mangum

    from serverless_scheduler_common.settings import Settings

    from .aws import build_aws_app

    app = build_aws_app(Settings())
    handler = Mangum(app, lifespan="off")
