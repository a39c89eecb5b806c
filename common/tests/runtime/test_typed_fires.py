"""Fires read with their job validated in one pass (`ConsumerRuntime.parse_fire`)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from serverless_scheduler_common import JobFired
from serverless_scheduler_common.ports import fire_shard
from serverless_scheduler_common.runtime.sqlite import SqliteFireQueue

from .conftest import AlphaJob, BetaJob


def test_the_job_is_read_into_the_class_its_job_type_names(
    rig: Any, make_job: Any, make_beta: Any, fire_of: Any
) -> None:
    for job, cls in ((make_job(), AlphaJob), (make_beta(), BetaJob)):
        original = fire_of(job)
        fired = rig.runtime.parse_fire(original.model_dump_json())
        assert isinstance(fired, JobFired)
        assert type(fired.job) is cls
        assert fired.job == job
        assert fired.fire_id == original.fire_id
        # On the wire it is the same fire: nothing is lost or added.
        assert json.loads(fired.model_dump_json()) == json.loads(original.model_dump_json())


def test_a_fire_read_from_the_queue_table_hands_the_plugin_one_validated_job(
    rig: Any, make_job: Any, fire_of: Any
) -> None:
    job = make_job(name="from the table")
    other = SqliteFireQueue(rig.dispatcher.queue.db_path)  # e.g. the engine's process
    other.add_many([fire_of(job, 1)])
    rig.dispatcher.load_queued()
    assert rig.dispatcher.wait_idle(timeout=10)
    [(seen_job, seen_fire)] = rig.alpha.seen
    assert isinstance(seen_job, AlphaJob)
    assert seen_job.name == "from the table"
    assert seen_fire.job is seen_job


def test_a_fire_handed_over_in_memory_also_carries_the_validated_job(
    rig: Any, make_job: Any, fire_of: Any
) -> None:
    job = make_job()
    fired = fire_of(job)
    assert isinstance(fired.job, dict)  # as published
    rig.dispatcher.publish(fired)
    assert rig.dispatcher.wait_idle(timeout=10)
    [(seen_job, seen_fire)] = rig.alpha.seen
    assert seen_fire.job is seen_job
    assert seen_fire.fire_id == fired.fire_id
    assert seen_fire.model_dump(mode="json") == fired.model_dump(mode="json")


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"schedule": {"kind": "weekly"}}, "schedule"),
        ({"job_type": "beta_job"}, "job_type"),
        ({"name": ""}, "name"),
    ],
)
def test_an_invalid_queued_snapshot_is_dead_lettered_naming_the_field(
    rig: Any, make_job: Any, fire_of: Any, change: dict[str, Any], named: str
) -> None:
    job = make_job()
    good = fire_of(job)
    payload = json.loads(good.model_dump_json())
    payload["job"].update(change)
    text = json.dumps(payload)
    fired = rig.runtime.parse_fire(text)
    assert isinstance(fired.job, dict)  # left for `handle` to report
    other = SqliteFireQueue(rig.dispatcher.queue.db_path)
    other.add_payloads([(good.fire_id, 0.0, text, fire_shard(good.job_id))])
    rig.dispatcher.load_queued()
    assert rig.dispatcher.wait_idle(timeout=10)
    assert rig.alpha.calls == []
    [letter] = rig.dead.list()
    assert named in letter.error
    assert letter.payload == text  # kept as queued, for redrive after a fix
    [run] = rig.runs_of(job)
    assert run.status == "error"


def test_an_unknown_job_type_is_read_as_a_plain_fire(rig: Any, make_job: Any, fire_of: Any) -> None:
    payload = json.loads(fire_of(make_job()).model_dump_json())
    payload["job_type"] = payload["job"]["job_type"] = "gone_job"
    fired = rig.runtime.parse_fire(json.dumps(payload))
    assert fired.job_type == "gone_job"
    assert isinstance(fired.job, dict)


@pytest.mark.parametrize("text", ["{}", "not json", '{"job_type": "alpha_job"}', "[1, 2]"])
def test_a_payload_that_is_not_a_fire_raises_a_validation_error(rig: Any, text: str) -> None:
    with pytest.raises(ValidationError):
        rig.runtime.parse_fire(text)
