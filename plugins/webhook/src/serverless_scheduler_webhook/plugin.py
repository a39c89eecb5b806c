"""Entry-point module of the webhook plugin: a scheduled HTTP call.

The call goes through the platform's outbound HTTP facility
(`serverless_scheduler_common.http`: SSRF guard, timeouts, size cap, redirect limit).
An unexpected status or a transport failure raises, so the runtime retries and, past
the cap, dead-letters the fire. Header values are secrets: they are never logged, never
put in a run's summary or detail, and the API masks them (`secret_fields`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, ClassVar, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import AnyHttpUrl, Field, ValidationInfo, field_validator

from serverless_scheduler_common import (
    JobFired,
    JobTypeRegistry,
    RunContext,
    RunOutcome,
    ScheduledJob,
    hookimpl,
)
from serverless_scheduler_common.headers import headers_problem
from serverless_scheduler_common.job import is_write

if TYPE_CHECKING:
    from serverless_scheduler_common.http import OutboundHTTP

log = logging.getLogger(__name__)

#: How much of the response body a run keeps as its detail.
DETAIL_BYTES = 2048


class WebhookJob(ScheduledJob):
    """Calls an HTTP endpoint on schedule and checks the status code."""

    secret_fields: ClassVar[frozenset[str]] = frozenset({"headers"})

    job_type: Literal["webhook_job"] = "webhook_job"
    url: AnyHttpUrl = Field(description="http(s) URL to call.")
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"] = "POST"
    headers: dict[str, str] = Field(
        default_factory=dict, description="Request headers (write-only)."
    )
    body: str | None = Field(default=None, max_length=32 * 1024)
    expected_status: list[int] = Field(
        default_factory=lambda: [200, 201, 202, 204], min_length=1, max_length=50
    )
    timeout_s: float = Field(default=10.0, gt=0, le=60)

    @field_validator("expected_status")
    @classmethod
    def _valid_statuses(cls, value: list[int]) -> list[int]:
        for i, status in enumerate(value):
            if not 100 <= status <= 599:
                raise ValueError(f"expected_status[{i}]: {status} is not an HTTP status (100-599)")
        return value

    @field_validator("headers")
    @classmethod
    def _valid_headers(cls, value: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        # Jobs stored before the header rules were tightened keep loading (each fire
        # validates its snapshot): the facility leaves out reserved headers at send.
        problem = headers_problem(value, "the scheduler", write=is_write(info))
        if problem is not None:
            raise ValueError(problem)
        return value


class WebhookError(Exception):
    """The call failed or answered an unexpected status (the runtime retries)."""


def display_url(url: str) -> str:
    """The URL without credentials, query or fragment (they may carry secrets)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def redact(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        if len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    return text


def call_webhook(job: WebhookJob, http: OutboundHTTP) -> RunOutcome:
    """Make the job's request once; raise WebhookError unless the status is expected."""
    from serverless_scheduler_common.http import OutboundHTTPError

    shown = f"{job.method} {display_url(str(job.url))}"
    secrets = [v for v in job.headers.values() if v]
    try:
        response = http.request(
            job.method,
            str(job.url),
            headers=job.headers,
            body=job.body.encode() if job.body is not None else None,
            timeout_s=job.timeout_s,
        )
    except OutboundHTTPError as exc:
        raise WebhookError(f"{shown} failed: {redact(str(exc), secrets)}") from None
    if response.status not in job.expected_status:
        expected = ", ".join(str(s) for s in job.expected_status)
        raise WebhookError(f"{shown} answered {response.status}; expected one of {expected}")
    detail = redact(response.content[:DETAIL_BYTES].decode("utf-8", "replace"), secrets)
    return RunOutcome(
        status="ok",
        summary=f"{shown} -> {response.status} in {response.elapsed_s:.2f}s",
        detail=detail or None,
    )


@hookimpl
def serverless_scheduler_job_types(registry: JobTypeRegistry) -> None:
    registry.add(WebhookJob)


@hookimpl
def serverless_scheduler_handle_job(
    job: ScheduledJob, fired: JobFired, context: RunContext
) -> RunOutcome | None:
    if not isinstance(job, WebhookJob):
        return None
    # Loaded on use: the items API imports this module only for the job class.
    from serverless_scheduler_common.http import OutboundHTTP

    with OutboundHTTP(context.settings) as http:
        outcome = call_webhook(job, http)
    log.info("webhook job %s fire %s: %s", job.job_id, fired.fire_id, outcome.summary)
    return outcome
