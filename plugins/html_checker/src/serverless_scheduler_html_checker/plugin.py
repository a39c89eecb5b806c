"""Entry-point module of the HTML change checker plugin."""

from __future__ import annotations

import re
from typing import ClassVar, Literal

from pydantic import AnyHttpUrl, Field, field_validator
from serverless_scheduler_common import JobTypeRegistry, ScheduledJob, hookimpl


class HTMLMonitorJob(ScheduledJob):
    """Watch a web page (or part of it) and notify when its content changes."""

    secret_fields: ClassVar[frozenset[str]] = frozenset({"headers", "notify"})

    job_type: Literal["html_monitor_job"] = "html_monitor_job"
    url: AnyHttpUrl = Field(description="http(s) URL of the page to watch.")
    css_selector: str | None = Field(default=None, max_length=500)
    xpath: str | None = Field(default=None, max_length=500)
    mode: Literal["text", "html"] = "text"
    ignore_patterns: list[str] = Field(default_factory=list, max_length=50)
    trigger_text: str | None = Field(default=None, max_length=500)
    headers: dict[str, str] = Field(default_factory=dict)
    notify: list[str] = Field(default_factory=list, max_length=20, description="apprise URLs")

    @field_validator("ignore_patterns")
    @classmethod
    def _patterns_compile(cls, value: list[str]) -> list[str]:
        for i, pattern in enumerate(value):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"ignore_patterns[{i}] is not a valid regex: {exc}") from exc
        return value


@hookimpl
def serverless_scheduler_job_types(registry: JobTypeRegistry) -> None:
    registry.add(HTMLMonitorJob)
