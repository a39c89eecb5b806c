"""Local distribution: routing, retries, dead letters, redrive, overlap, auto-pause."""

from __future__ import annotations

from typing import Any

from serverless_scheduler_common.ports import Publisher
from serverless_scheduler_common.runtime.dispatcher import backoff_delay, redrive
from serverless_scheduler_common.runtime.sqlite import SqliteFireQueue


def test_dispatcher_is_a_publisher(rig: Any) -> None:
    assert isinstance(rig.dispatcher, Publisher)


def test_fires_reach_only_the_owning_plugin(
    rig: Any, make_job: Any, make_beta: Any, fire_of: Any
) -> None:
    alpha_job, beta_job = make_job("a"), make_beta("b")
    fa, fb = fire_of(alpha_job), fire_of(beta_job)
    rig.dispatcher.publish_many([fa, fb])
    assert rig.dispatcher.wait_idle(timeout=10)
    assert rig.alpha.calls == [fa.fire_id]
    assert rig.beta.calls == [fb.fire_id]
    [run] = rig.runs_of(alpha_job)
    assert (run.status, run.summary, run.fire_id) == ("changed", "alpha ran a", fa.fire_id)
    [brun] = rig.runs.list("bob", beta_job.job_id).items
    assert brun.status == "ok"
    assert rig.dispatcher.queue.count() == 0


def test_duplicate_fire_runs_once(rig: Any, make_job: Any, fire_of: Any) -> None:
    job = make_job()
    fired = fire_of(job)
    rig.dispatcher.publish(fired)
    assert rig.dispatcher.wait_idle(timeout=10)
    rig.dispatcher.publish(fired)
    rig.dispatcher.publish(fired)
    assert rig.dispatcher.wait_idle(timeout=10)
    assert rig.alpha.calls == [fired.fire_id]
    assert len(rig.runs_of(job)) == 1


def test_failing_consumer_is_retried_dead_lettered_then_redriven(
    rig: Any, make_job: Any, fire_of: Any
) -> None:
    job = make_job()
    fired = fire_of(job)
    rig.alpha.failing = True
    rig.dispatcher.publish(fired)
    assert rig.dispatcher.wait_idle(timeout=10)

    assert rig.alpha.calls == [fired.fire_id] * 3  # max_attempts=3
    runs = rig.runs_of(job)
    assert [r.status for r in runs] == ["error"] * 3
    assert [r.summary.split(":")[0] for r in runs] == [
        "attempt 3 failed",
        "attempt 2 failed",
        "attempt 1 failed",
    ]
    assert "RuntimeError: boom on attempt 3" in runs[0].detail
    [letter] = rig.dead.list()
    assert (letter.fire_id, letter.attempts, letter.job_type) == (fired.fire_id, 3, "alpha_job")
    assert "boom" in letter.error

    rig.alpha.failing = False
    assert redrive(rig.dead, SqliteFireQueue(rig.db)) == [fired.fire_id]  # as `dlq redrive` does
    assert rig.dead.list() == []
    # the running dispatcher notices the fire another process queued
    from time import monotonic, sleep

    deadline = monotonic() + 10
    while len(rig.runs_of(job)) < 4 and monotonic() < deadline:
        sleep(0.02)
    runs = rig.runs_of(job)
    assert [r.status for r in runs] == ["changed", "error", "error", "error"]
    assert rig.alpha.calls == [fired.fire_id] * 4


def test_backoff_grows_exponentially_to_a_cap() -> None:
    delays = [backoff_delay(a, base_s=1, max_s=10, jitter=0) for a in range(1, 7)]
    assert delays == [1, 2, 4, 8, 10, 10]
    assert 0.9 <= backoff_delay(1, base_s=1, max_s=10) <= 1


def test_invalid_snapshot_is_dead_lettered_at_once(rig: Any, make_job: Any, fire_of: Any) -> None:
    job = make_job()
    good = fire_of(job)
    bad = good.model_copy(update={"job": {**good.job, "schedule": {"kind": "weekly"}}})
    rig.dispatcher.publish(bad)
    assert rig.dispatcher.wait_idle(timeout=10)
    assert rig.alpha.calls == []
    [letter] = rig.dead.list()
    assert letter.attempts == 1
    assert "schedule" in letter.error
    [run] = rig.runs_of(job)
    assert run.status == "error"


def test_overlap_skip_records_skipped_runs(
    rig: Any, make_job: Any, fire_of: Any, wait_for: Any
) -> None:
    job = make_job(policy={"overlap": "skip"})
    rig.alpha.block = True
    first = fire_of(job, 0)
    rig.dispatcher.publish(first)
    assert rig.alpha.entered.wait(5)
    rig.dispatcher.publish_many([fire_of(job, 1), fire_of(job, 2)])
    wait_for(lambda: len(rig.runs_of(job)) == 2)
    assert {r.status for r in rig.runs_of(job)} == {"skipped"}
    rig.alpha.release.set()
    assert rig.dispatcher.wait_idle(timeout=10)
    statuses = sorted(r.status for r in rig.runs_of(job))
    assert statuses == ["changed", "skipped", "skipped"]
    assert rig.alpha.calls == [first.fire_id]


def test_overlap_buffer_one_queues_exactly_one(
    rig: Any, make_job: Any, fire_of: Any, wait_for: Any
) -> None:
    job = make_job(policy={"overlap": "buffer_one"})
    rig.alpha.block = True
    first = fire_of(job, 0)
    rig.dispatcher.publish(first)
    assert rig.alpha.entered.wait(5)
    rig.dispatcher.publish_many([fire_of(job, 1), fire_of(job, 2), fire_of(job, 3)])
    wait_for(lambda: len(rig.runs_of(job)) == 2)  # two skipped, one buffered
    assert [r.status for r in rig.runs_of(job)] == ["skipped", "skipped"]
    rig.alpha.release.set()
    assert rig.dispatcher.wait_idle(timeout=10)
    statuses = sorted(r.status for r in rig.runs_of(job))
    assert statuses == ["changed", "changed", "skipped", "skipped"]
    assert len(rig.alpha.calls) == 2
    assert rig.alpha.calls[0] == first.fire_id


def test_overlap_allow_all_runs_concurrently(
    rig: Any, make_job: Any, fire_of: Any, wait_for: Any
) -> None:
    job = make_job(policy={"overlap": "allow_all"})
    rig.alpha.block = True
    rig.dispatcher.publish_many([fire_of(job, i) for i in range(3)])
    wait_for(lambda: len(rig.alpha.calls) == 3)  # all three entered at once
    rig.alpha.release.set()
    assert rig.dispatcher.wait_idle(timeout=10)
    assert [r.status for r in rig.runs_of(job)] == ["changed"] * 3


def test_pause_after_failures_pauses_on_the_third_failed_fire(
    rig_factory: Any, make_job: Any, fire_of: Any
) -> None:
    rig = rig_factory(max_attempts=1)
    rig.dispatcher.start()
    job = make_job(fail=True, policy={"pause_after_failures": 3}, notify=["json://127.0.0.1/x"])
    rig.jobs.put(job)
    for minute in range(2):
        rig.dispatcher.publish(fire_of(job, minute))
        assert rig.dispatcher.wait_idle(timeout=10)
    assert rig.jobs.get("alice", job.job_id)["enabled"] is True
    rig.dispatcher.publish(fire_of(job, 2))
    assert rig.dispatcher.wait_idle(timeout=10)
    stored = rig.jobs.get("alice", job.job_id)
    assert stored["enabled"] is False
    assert stored["version"] == job.version + 1
    newest = rig.runs_of(job)[0]
    assert newest.status == "error"
    assert "paused after 3 consecutive failed fires" in newest.summary
    [(urls, title, body)] = rig.notifier.sent
    assert title.startswith("Job paused")
    assert urls == ["json://127.0.0.1/x"]
    assert "paused" in body and job.job_id in body
    assert len(rig.dead.list()) == 3


def test_success_resets_the_failure_count(rig_factory: Any, make_job: Any, fire_of: Any) -> None:
    rig = rig_factory(max_attempts=1)
    rig.dispatcher.start()
    job = make_job(policy={"pause_after_failures": 2})
    rig.jobs.put(job)
    rig.alpha.failing = True
    rig.dispatcher.publish(fire_of(job, 0))
    assert rig.dispatcher.wait_idle(timeout=10)
    rig.alpha.failing = False
    rig.dispatcher.publish(fire_of(job, 1))
    assert rig.dispatcher.wait_idle(timeout=10)
    rig.alpha.failing = True
    rig.dispatcher.publish(fire_of(job, 2))
    assert rig.dispatcher.wait_idle(timeout=10)
    assert rig.jobs.get("alice", job.job_id)["enabled"] is True


def test_fires_accepted_before_a_restart_run_after_it(
    rig_factory: Any, make_job: Any, fire_of: Any
) -> None:
    job = make_job(policy={"overlap": "allow_all"})
    first = rig_factory()
    fires = [fire_of(job, i) for i in range(20)]
    first.dispatcher.publish_many(fires)  # accepted, never started: as if killed now
    assert first.dispatcher.queue.count() == 20
    second = rig_factory()
    second.dispatcher.start()
    assert second.dispatcher.wait_idle(timeout=10)
    assert sorted(second.alpha.calls) == sorted(f.fire_id for f in fires)
    assert second.dispatcher.queue.count() == 0


def test_stop_with_drain_finishes_due_fires(rig_factory: Any, make_job: Any, fire_of: Any) -> None:
    rig = rig_factory()
    rig.dispatcher.start()
    job = make_job(policy={"overlap": "allow_all"})
    rig.dispatcher.publish_many([fire_of(job, i) for i in range(30)])
    rig.dispatcher.stop(drain=True, timeout=10)
    assert len(rig.alpha.calls) == 30
    assert rig.dispatcher.queue.count() == 0
