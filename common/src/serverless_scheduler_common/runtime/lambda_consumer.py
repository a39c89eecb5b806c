"""Lambda entry point of every plugin consumer:
`serverless_scheduler_common.runtime.lambda_consumer.handler`.

Accepts SQS events (the plugin's queue, SNS raw delivery or the SNS envelope) and
direct SNS events. Each record becomes a `JobFired` run through `ConsumerRuntime`, or
is a `JobRemoved` notice (a deleted job) that has the plugin forget the job's state;
an SQS batch returns `batchItemFailures` naming only the records to retry (SQS moves a
record to the plugin's DLQ after `maxReceiveCount`, which Terraform sets to
`SCHEDULER_MAX_ATTEMPTS`). A fire that can never succeed (its snapshot no longer
validates) goes straight to the DLQ when `SCHEDULER_DEAD_LETTER_QUEUE_URL` is set. A direct
SNS event raises when its record failed, so Lambda's asynchronous retries apply.

The import and the wiring (on the first event) run with the cyclic garbage collector
paused (see `serverless_scheduler_common.coldstart`): they only create long-lived objects.
"""

from __future__ import annotations

import logging
from typing import Any

from ..coldstart import collector_paused

with collector_paused():
    from ..events import JobFired, JobRemoved
    from ..plugins import build_registry, get_plugin_manager
    from ..settings import Settings
    from .core import ConsumerRuntime
    from .dynamodb import DynamoDBFireLedger, DynamoDBJobControl, DynamoDBRunRepository
    from .ports import DeadLetter, DeadLetterStore
    from .sqs import SqsDeadLetterStore, event_from_body

log = logging.getLogger(__name__)

#: Settings this handler needs at start-up; Terraform sets SCHEDULER_<FIELD> for each
#: (checked by tests/terraform/test_artifacts.py, see docs/deploy.md).
REQUIRED_SETTINGS: tuple[str, ...] = ("runs_table", "idempotency_table", "jobs_table")

_runtime: ConsumerRuntime | None = None
_dead_letters: DeadLetterStore | None = None


def build_runtime(settings: Settings | None = None) -> ConsumerRuntime:
    """Wire the runtime from settings: DynamoDB runs, idempotency and jobs tables.

    Plugins get a DynamoDB `StateStore` when `SCHEDULER_STATE_TABLE` is set and an
    apprise notifier, as in local mode.
    """
    import boto3  # type: ignore[import-untyped,unused-ignore]

    from ..notify import AppriseNotifier
    from ..state import DynamoDBStateStore

    settings = settings or Settings()
    dynamodb = boto3.client("dynamodb", region_name=settings.aws_region)
    pm = get_plugin_manager(settings=settings)
    runs_table = settings.runs_table or ""
    ledger_table = settings.idempotency_table or ""
    return ConsumerRuntime(
        settings=settings,
        pm=pm,
        registry=build_registry(pm),
        runs=DynamoDBRunRepository(dynamodb, runs_table, retention=settings.runs_retention),
        ledger=DynamoDBFireLedger(dynamodb, ledger_table),
        job_control=DynamoDBJobControl(dynamodb, settings.jobs_table)
        if settings.jobs_table
        else None,
        state=DynamoDBStateStore(dynamodb, settings.state_table) if settings.state_table else None,
        notifier=AppriseNotifier(settings),
    )


def build_dead_letters(settings: Settings) -> DeadLetterStore | None:
    """The plugin's SQS dead-letter queue, when its URL is configured."""
    if not settings.dead_letter_queue_url:
        return None
    import boto3  # type: ignore[import-untyped,unused-ignore]

    sqs = boto3.client("sqs", region_name=settings.aws_region)
    return SqsDeadLetterStore(sqs, settings.dead_letter_queue_url)


def configure(runtime: ConsumerRuntime | None, dead_letters: DeadLetterStore | None = None) -> None:
    """Use this runtime (and DLQ) for the next invocations (None: wire from settings)."""
    global _runtime, _dead_letters
    _runtime, _dead_letters = runtime, dead_letters


def _current() -> ConsumerRuntime:
    global _runtime, _dead_letters
    if _runtime is None:
        with collector_paused():
            _runtime = build_runtime()
            _dead_letters = build_dead_letters(_runtime.settings)
    return _runtime


def handle_event(
    event: dict[str, Any],
    runtime: ConsumerRuntime,
    dead_letters: DeadLetterStore | None = None,
) -> dict[str, Any]:
    """Process an SQS or SNS event; returns the SQS partial-batch reply."""
    failures: list[dict[str, str]] = []
    sns_failed = 0
    for record in event.get("Records") or []:
        if record.get("EventSource") == "aws:sns" or "Sns" in record:
            if not _handle_one(record["Sns"].get("Message", ""), 1, runtime, "sns", dead_letters):
                sns_failed += 1
            continue
        message_id = str(record.get("messageId", ""))
        attempt = int(record.get("attributes", {}).get("ApproximateReceiveCount", "1"))
        if not _handle_one(record.get("body", ""), attempt, runtime, message_id, dead_letters):
            failures.append({"itemIdentifier": message_id})
    if sns_failed:
        raise RuntimeError(f"{sns_failed} SNS record(s) failed; Lambda will retry")
    return {"batchItemFailures": failures}


def _handle_one(
    body: str,
    attempt: int,
    runtime: ConsumerRuntime,
    ident: str,
    dead_letters: DeadLetterStore | None,
) -> bool:
    try:
        event: JobFired | JobRemoved = event_from_body(body)
    except ValueError as exc:
        log.error("record %s is not a JobFired: %s", ident, str(exc).splitlines()[0])
        return False
    if isinstance(event, JobRemoved):
        try:
            runtime.forget(event)
        except Exception:
            log.exception("record %s: could not forget deleted job %s", ident, event.job_id)
            return False
        return True
    fired = event
    try:
        result = runtime.handle(fired, attempt=attempt)
    except Exception:
        log.exception("record %s (fire %s) could not be processed", ident, fired.fire_id)
        return False
    if result.disposition == "dead" and dead_letters is not None:
        dead_letters.add(DeadLetter.of(fired, error=result.error, attempts=attempt))
        return True  # handled: it now waits in the DLQ for `dlq redrive`
    return result.disposition == "done"


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """The Lambda handler (wired once per container, reused while warm)."""
    runtime = _current()
    return handle_event(event, runtime, _dead_letters)
