"""Entry-point module of the example plugin (see docs/plugins.md)."""

from __future__ import annotations

import logging
from typing import Literal

from pydantic import Field

from serverless_scheduler_common import (
    JobFired,
    JobTypeRegistry,
    RunContext,
    RunOutcome,
    ScheduledJob,
    hookimpl,
)

log = logging.getLogger(__name__)


class ExampleJob(ScheduledJob):
    """Logs a message on every fire."""

    job_type: Literal["example_job"] = "example_job"
    message: str = Field(default="hello", max_length=500, description="What to log.")


@hookimpl
def serverless_scheduler_job_types(registry: JobTypeRegistry) -> None:
    registry.add(ExampleJob)


@hookimpl
def serverless_scheduler_handle_job(
    job: ScheduledJob, fired: JobFired, context: RunContext
) -> RunOutcome | None:
    if not isinstance(job, ExampleJob):
        return None
    log.info("example job %s fired for %s: %s", job.job_id, fired.scheduled_time, job.message)
    return RunOutcome(status="ok", summary=f"logged: {job.message[:80]}")
