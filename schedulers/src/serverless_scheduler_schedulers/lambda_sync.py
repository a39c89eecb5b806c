"""Lambda entry point: DynamoDB stream of the jobs table -> EventBridge schedules.

Wired once per container, on the first event, from `Settings` (jobs_table,
schedule_group, topic_arn, scheduler_role_arn, scheduler_dlq_arn; malformed records go to
`dead_letter_queue_url`, else to the queue of `scheduler_dlq_arn`). The import and the
wiring run with the cyclic garbage collector paused (see
`serverless_scheduler_common.coldstart`): they only create long-lived objects.
"""

from __future__ import annotations

import logging
from typing import Any

from serverless_scheduler_common.coldstart import collector_paused

with collector_paused():
    from serverless_scheduler_common.settings import Settings

    from .streams import StreamSync

log = logging.getLogger(__name__)

#: Settings this handler needs at start-up; Terraform sets SCHEDULER_<FIELD> for each
#: (checked by tests/terraform/test_artifacts.py, see docs/deploy.md).
REQUIRED_SETTINGS: tuple[str, ...] = (
    "schedule_group",
    "topic_arn",
    "scheduler_role_arn",
    "scheduler_dlq_arn",
)

_service: StreamSync | None = None


def queue_url_from_arn(arn: str) -> str:
    """`arn:aws:sqs:<region>:<account>:<name>` -> the queue's URL."""
    _, partition, _, region, account, name = arn.split(":", 5)
    domain = "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com"
    return f"https://sqs.{region}.{domain}/{account}/{name}"


def _required(settings: Settings, *names: str) -> None:
    missing = [n for n in names if not getattr(settings, n)]
    if missing:
        env = ", ".join(f"SCHEDULER_{n.upper()}" for n in missing)
        raise RuntimeError(f"schedulers Lambda is missing settings: {env}")


def build(
    settings: Settings | None = None,
    *,
    scheduler_client: Any = None,
    sqs_client: Any = None,
    sns_client: Any = None,
) -> StreamSync:
    """Compose the stream sync from settings; tests pass moto clients.

    Each applied removal is announced on the distribution topic (`JobRemoved`, routed
    by job_type like the job's fires) so the plugin that owns the job forgets its state.
    """
    import boto3

    from serverless_scheduler_common.events import JobChange, JobRemoved
    from serverless_scheduler_common.runtime.sns import SnsPublisher

    from .eventbridge import EventBridgeScheduleBackend
    from .streams import SqsDeadLetterSink

    settings = settings or Settings()
    _required(settings, "schedule_group", "topic_arn", "scheduler_role_arn")
    region = settings.aws_region
    backend = EventBridgeScheduleBackend(
        scheduler_client or boto3.client("scheduler", region_name=region),
        group_name=str(settings.schedule_group),
        topic_arn=str(settings.topic_arn),
        role_arn=str(settings.scheduler_role_arn),
        dlq_arn=settings.scheduler_dlq_arn,
    )
    dlq_url = settings.dead_letter_queue_url or (
        queue_url_from_arn(settings.scheduler_dlq_arn) if settings.scheduler_dlq_arn else None
    )
    sink = None
    if dlq_url:
        sink = SqsDeadLetterSink(sqs_client or boto3.client("sqs", region_name=region), dlq_url)
    topic = SnsPublisher(
        sns_client or boto3.client("sns", region_name=region), str(settings.topic_arn)
    )

    def announce(change: JobChange) -> None:
        removed = JobRemoved.of(change)
        if removed is not None:
            topic.publish_removed(removed)

    return StreamSync(backend=backend, registry=None, dead_letter=sink, on_removed=announce)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """DynamoDB stream batch -> schedules; returns `batchItemFailures` (first failure)."""
    global _service
    if _service is None:
        with collector_paused():
            settings = Settings()
            logging.getLogger().setLevel(settings.log_level)
            _service = build(settings)
    return _service.handle(event)
