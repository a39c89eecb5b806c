"""Entry-point module of the webhook plugin."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import AnyHttpUrl, Field
from serverless_scheduler_common import JobTypeRegistry, ScheduledJob, hookimpl


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
    expected_status: list[int] = Field(default_factory=lambda: [200, 201, 202, 204])
    timeout_s: float = Field(default=10.0, gt=0, le=60)


@hookimpl
def serverless_scheduler_job_types(registry: JobTypeRegistry) -> None:
    registry.add(WebhookJob)
