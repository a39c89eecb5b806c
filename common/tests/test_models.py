"""Round-trip JSON of every model, ids, policy defaults and events."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import BaseModel, ValidationError

from serverless_scheduler_common import (
    AtSchedule,
    CronSchedule,
    JobChange,
    JobFired,
    JobPolicy,
    RateSchedule,
    Run,
    RunOutcome,
    Settings,
    build_registry,
    fire_key,
    get_plugin_manager,
)
from serverless_scheduler_common.ids import new_id
from serverless_scheduler_common.runs import cap_detail

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
RATE = {"kind": "rate", "every": 5, "unit": "minutes"}


def _round_trip(model: BaseModel) -> None:
    again = type(model).model_validate_json(model.model_dump_json())
    assert again == model


@pytest.mark.parametrize(
    "model",
    [
        RateSchedule(
            every=5, unit="hours", start_at=NOW, end_at=NOW + timedelta(days=1), jitter_s=30
        ),
        CronSchedule(expression="0 9 * * 1-5", timezone="Europe/Warsaw"),
        AtSchedule(at=NOW),
        JobPolicy(overlap="buffer_one", catchup_window_s=60, pause_after_failures=3),
        JobChange(kind="insert", owner_id="u", job_id="j", version=1, new={"a": 1}),
        JobChange(kind="remove", owner_id="u", job_id="j", version=4, old={"a": 1}),
        JobFired(
            job_type="example_job", job_id="j", owner_id="u", scheduled_time=NOW, job={"x": 1}
        ),
        Run(
            job_id="j",
            fire_id="j@x",
            scheduled_time=NOW,
            started_at=NOW,
            status="changed",
            summary="s",
            detail="d",
        ),
        RunOutcome(status="error", summary="error: boom"),
    ],
)
def test_models_round_trip_through_json(model: BaseModel) -> None:
    _round_trip(model)


def test_every_plugin_job_round_trips() -> None:
    registry = build_registry(get_plugin_manager())
    samples = {
        "example_job": {"message": "hi"},
        "webhook_job": {
            "url": "https://example.org/hook",
            "headers": {"X-Token": "s"},
            "body": "{}",
        },
        "html_monitor_job": {
            "url": "https://example.org/",
            "ignore_patterns": ["\\d+ visitors"],
            "notify": ["json://localhost/"],
        },
    }
    assert set(samples) == set(registry.known())
    for job_type, fields in samples.items():
        job = registry.parse_job(
            {
                "job_type": job_type,
                "name": job_type,
                "schedule": RATE,
                "policy": {"overlap": "allow_all"},
                **fields,
            }
        )
        again = registry.parse_job(job.snapshot())
        assert again == job
        assert again.snapshot() == job.snapshot()


def test_job_forbids_extra_fields_and_defaults_server_fields() -> None:
    registry = build_registry(get_plugin_manager())
    job = registry.parse_job({"job_type": "example_job", "name": "n", "schedule": RATE})
    assert len(job.job_id) == 26 and job.version == 0 and job.enabled
    assert job.policy == JobPolicy()
    with pytest.raises(ValidationError) as info:
        registry.parse_job(
            {"job_type": "example_job", "name": "n", "schedule": RATE, "colour": "red"}
        )
    assert info.value.errors()[0]["loc"] == ("colour",)


def test_invalid_ignore_pattern_names_its_index() -> None:
    registry = build_registry(get_plugin_manager())
    with pytest.raises(ValidationError, match=r"ignore_patterns\[1\] is not a valid regex"):
        registry.parse_job(
            {
                "job_type": "html_monitor_job",
                "name": "n",
                "schedule": RATE,
                "url": "https://a.b/",
                "ignore_patterns": ["ok", "("],
            }
        )


def test_ids_are_unique_sortable_and_url_safe() -> None:
    ids = [new_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[0-9a-z]{26}", i) for i in ids)
    assert ids[0][:10] <= ids[-1][:10]


def test_policy_default_catchup_is_one_period_capped() -> None:
    policy = JobPolicy()
    assert policy.overlap == "skip" and policy.pause_after_failures is None
    assert policy.effective_catchup_window_s(300) == 300
    assert policy.effective_catchup_window_s(7 * 86_400) == 86_400
    assert JobPolicy(catchup_window_s=0).effective_catchup_window_s(300) == 0
    with pytest.raises(ValidationError):
        JobPolicy(overlap="queue")  # type: ignore[arg-type]


def test_fire_id_is_stable_per_job_and_scheduled_time() -> None:
    warsaw_noon = datetime.fromisoformat("2026-11-23T13:00:00+01:00")
    a = JobFired(job_type="t", job_id="j1", owner_id="u", scheduled_time=NOW, job={})
    b = JobFired(job_type="t", job_id="j1", owner_id="u", scheduled_time=warsaw_noon, job={})
    assert a.fire_id == b.fire_id == fire_key("j1", NOW) == "j1@2026-11-23T12:00:00Z"
    # EventBridge substitutes <aws.scheduler.scheduled-time> as an ISO string.
    parsed = JobFired.model_validate_json(
        '{"job_type":"t","job_id":"j1","owner_id":"u","scheduled_time":"2026-11-23T12:00:00Z","job":{}}'
    )
    assert parsed.fire_id == a.fire_id
    given = JobFired(
        job_type="t", job_id="j1", owner_id="u", scheduled_time=NOW, job={}, fire_id="j1@m"
    )
    assert given.fire_id == "j1@m"  # kept as given (a manual fire's)
    with pytest.raises(ValidationError, match="fire_id"):
        JobFired(job_type="t", job_id="j1", owner_id="u", scheduled_time=NOW, job={}, fire_id="")
    # Without a valid scheduled time there is nothing to derive it from: the error
    # names that field, and no exception escapes the factory.
    with pytest.raises(ValidationError, match="scheduled_time"):
        JobFired.model_validate({"job_type": "t", "job_id": "j1", "owner_id": "u", "job": {}})


def test_job_change_needs_new_image_for_insert() -> None:
    with pytest.raises(ValidationError, match="needs the new image"):
        JobChange(kind="insert", owner_id="u", job_id="j", version=1)


def test_cap_detail_truncates_with_marker() -> None:
    assert cap_detail("abc", 10) == "abc"
    capped = cap_detail("x" * 50, 10)
    assert capped is not None and capped.startswith("x" * 10) and "truncated 40" in capped


def test_settings_read_prefixed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCHEDULER_ALLOW_PRIVATE_NETWORKS", "true")
    monkeypatch.setenv("SCHEDULER_CORS_ORIGINS", "https://a.example, https://b.example")
    monkeypatch.setenv("SCHEDULER_PORT", "9090")
    settings = Settings()
    assert settings.allow_private_networks is True
    assert settings.cors_origins == ["https://a.example", "https://b.example"]
    assert settings.port == 9090
    monkeypatch.setenv("SCHEDULER_PORT", "not-a-port")
    with pytest.raises(ValidationError, match="port"):
        Settings()
