"""The example plugin end to end through the plugin manager's hook routing."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from serverless_scheduler_common import (
    JobFired,
    RunContext,
    Settings,
    build_registry,
    get_plugin_manager,
)
from serverless_scheduler_common.plugins import consumer_for


def test_fire_reaches_only_the_owning_plugin(caplog: pytest.LogCaptureFixture) -> None:
    pm = get_plugin_manager()
    registry = build_registry(pm)
    job = registry.parse_job(
        {
            "job_type": "example_job",
            "name": "greeter",
            "schedule": {"kind": "rate", "every": 1, "unit": "minutes"},
            "message": "hello from a test",
        }
    )
    fired = JobFired(
        job_type=job.job_type,
        job_id=job.job_id,
        owner_id="u1",
        scheduled_time=datetime(2026, 11, 23, 12, tzinfo=UTC),
        job=job.snapshot(),
    )
    handle = consumer_for(pm, registry, "example_job")
    with caplog.at_level(logging.INFO):
        outcome = handle(job=job, fired=fired, context=RunContext(settings=Settings()))
    assert outcome.status == "ok"
    assert outcome.summary == "logged: hello from a test"
    assert "hello from a test" in caplog.text
