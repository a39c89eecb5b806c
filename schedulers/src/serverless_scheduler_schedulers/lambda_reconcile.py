"""Lambda entry point: the reconciler, run by EventBridge every 15 minutes.

Wired once per container, on the first event, from `Settings` (jobs_table,
schedule_group, topic_arn, scheduler_role_arn, scheduler_dlq_arn). Returns the report's
counts. The import and the wiring run with the cyclic garbage collector paused (see
`serverless_scheduler_common.coldstart`): they only create long-lived objects.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from serverless_scheduler_common.coldstart import collector_paused

with collector_paused():
    from serverless_scheduler_common.settings import Settings

    from .reconcile import ReconcileReport, reconcile

log = logging.getLogger(__name__)

#: Settings this handler needs at start-up; Terraform sets SCHEDULER_<FIELD> for each
#: (checked by tests/terraform/test_artifacts.py, see docs/deploy.md).
REQUIRED_SETTINGS: tuple[str, ...] = (
    "jobs_table",
    "schedule_group",
    "topic_arn",
    "scheduler_role_arn",
)

_run: Callable[[], ReconcileReport] | None = None


def build(
    settings: Settings | None = None,
    *,
    scheduler_client: Any = None,
    dynamodb_client: Any = None,
    sns_client: Any = None,
) -> Callable[[], ReconcileReport]:
    """Compose one reconcile run from settings; tests pass moto clients.

    An orphan schedule it deletes (its job's deletion never synced) is announced first
    on the distribution topic, as the sync function announces deletions, so the job's
    plugin forgets its runs and state.
    """
    import boto3

    from serverless_scheduler_common.runtime.sns import SnsPublisher

    from .dynamodb_jobs import DynamoDBJobSnapshots
    from .eventbridge import EventBridgeScheduleBackend

    settings = settings or Settings()
    missing = [
        f"SCHEDULER_{name.upper()}"
        for name in ("jobs_table", "schedule_group", "topic_arn", "scheduler_role_arn")
        if not getattr(settings, name)
    ]
    if missing:
        raise RuntimeError(f"reconcile Lambda is missing settings: {', '.join(missing)}")
    region = settings.aws_region
    backend = EventBridgeScheduleBackend(
        scheduler_client or boto3.client("scheduler", region_name=region),
        group_name=str(settings.schedule_group),
        topic_arn=str(settings.topic_arn),
        role_arn=str(settings.scheduler_role_arn),
        dlq_arn=settings.scheduler_dlq_arn,
    )
    jobs = DynamoDBJobSnapshots(
        dynamodb_client or boto3.client("dynamodb", region_name=region), str(settings.jobs_table)
    )

    topic = SnsPublisher(
        sns_client or boto3.client("sns", region_name=region), str(settings.topic_arn)
    )

    def run() -> ReconcileReport:
        return reconcile(jobs, backend, None, announce_removed=topic.publish_removed)

    return run


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Reconcile jobs and schedules; the reply (and the log) carries the counts."""
    global _run
    if _run is None:
        with collector_paused():
            settings = Settings()
            logging.getLogger().setLevel(settings.log_level)
            _run = build(settings)
    report = _run()
    result = report.as_dict()
    log.info("reconcile report: %s", result)
    return result
