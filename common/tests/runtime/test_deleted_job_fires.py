"""Fires of a deleted job that still arrive are dropped: a retry waiting in the
dispatcher, a fire queued after a restart, and a fire that was running when the job
was deleted (what its plugin stored goes again). The removal notice reaches the
dispatcher as a queue row (`removal_row`), as local mode queues it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from serverless_scheduler_common import hookimpl
from serverless_scheduler_common.events import JobRemoved
from serverless_scheduler_common.ports import StateStore
from serverless_scheduler_common.runtime.core import FireBatch
from serverless_scheduler_common.runtime.dispatcher import removal_row
from serverless_scheduler_common.runtime.ports import DeadLetter, FireLookup
from serverless_scheduler_common.runtime.sqlite import SqliteFireLedger
from serverless_scheduler_common.state import SqliteStateStore

from .conftest import AlphaJob, LocalRig, fire_of, make_job, wait_for

NAMESPACE = "alpha"


def _notice(job: AlphaJob) -> JobRemoved:
    return JobRemoved(
        job_type=job.job_type, owner_id=job.owner_id, job_id=job.job_id, version=job.version
    )


def _queued(rig: LocalRig) -> int:
    return rig.dispatcher.queue.count()


class Forgetter:
    """The state half of a stateful plugin: forgets what it kept for a deleted job."""

    @hookimpl
    def serverless_scheduler_forget_job(
        self, owner_id: str, job_id: str, job_type: str, state: StateStore
    ) -> None:
        if job_type == "alpha_job":
            state.forget(NAMESPACE, f"{owner_id}/{job_id}")


def test_a_retry_due_after_the_removal_notice_is_dropped(
    rig_factory: Callable[..., LocalRig],
) -> None:
    rig = rig_factory(retry_base_s=0.6, retry_max_s=0.6)
    rig.alpha.failing = True
    job, kept = make_job("gone"), make_job("kept")
    rig.dispatcher.start()
    rig.dispatcher.publish_many([fire_of(job), fire_of(kept)])
    wait_for(lambda: len(rig.alpha.calls) == 2)  # both failed once; retries wait 0.6 s

    rig.dispatcher.publish_payloads([removal_row(_notice(job))])
    assert rig.dispatcher.wait_idle(timeout=20)  # including the delayed retries

    assert rig.alpha.calls.count(fire_of(job).fire_id) == 1  # the retry did not run
    assert rig.alpha.calls.count(fire_of(kept).fire_id) == 3  # every attempt
    assert rig.runs_of(job) == []  # the first attempt's run went with the notice
    assert len(rig.runs_of(kept)) == 3
    assert [letter.job_id for letter in rig.dead.list()] == [kept.job_id]  # past its cap
    assert _queued(rig) == 0
    assert rig.runtime.ledger.is_removed(f"alice/{job.job_id}")
    assert not rig.runtime.ledger.is_removed(f"alice/{kept.job_id}")


def test_a_fire_queued_after_a_restart_is_dropped(
    tmp_path: Path, rig_factory: Callable[..., LocalRig]
) -> None:
    job, other = make_job("gone"), make_job("other")
    first = rig_factory()
    for dead in (job, other):
        first.dead.add(DeadLetter.of(fire_of(dead, 9), error="boom", attempts=3))
    first.dispatcher.start()
    first.dispatcher.publish(fire_of(job, 0))
    wait_for(lambda: len(first.runs_of(job)) == 1)
    first.dispatcher.publish_payloads([removal_row(_notice(job))])
    assert first.dispatcher.wait_idle(timeout=20)
    assert first.runs_of(job) == []
    # Its dead letters go with it (a redrive would only drop them).
    assert [letter.job_id for letter in first.dead.list()] == [other.job_id]
    first.dispatcher.stop()

    again = rig_factory()  # a restarted process over the same file
    again.dispatcher.start()
    again.dispatcher.publish(fire_of(job, 1))  # e.g. a dead letter redriven before
    again.dispatcher.publish(fire_of(other, 1))
    assert again.dispatcher.wait_idle(timeout=20)

    assert again.alpha.calls == [fire_of(other, 1).fire_id]
    assert again.runs_of(job) == []
    assert len(again.runs_of(other)) == 1
    assert _queued(again) == 0


def test_a_fire_running_when_its_job_is_deleted_leaves_no_state_and_no_run(
    rig_factory: Callable[..., LocalRig],
) -> None:
    rig = rig_factory()
    state = SqliteStateStore(rig.db)
    rig.runtime.state = state
    rig.runtime.pm.register(Forgetter())
    job = make_job("gone")
    key = f"alice/{job.job_id}"
    rig.alpha.block = True
    rig.dispatcher.start()
    rig.dispatcher.publish(fire_of(job))
    assert rig.alpha.entered.wait(10)

    # The notice is handled while the fire runs (another worker), and the plugin
    # stores the page text it fetched after that.
    rig.runtime.forget(_notice(job))
    state.put(NAMESPACE, key, {"text": "fetched by the running fire"})
    rig.alpha.release.set()
    assert rig.dispatcher.wait_idle(timeout=20)

    assert rig.alpha.calls == [fire_of(job).fire_id]
    assert state.get(NAMESPACE, key) is None
    assert rig.runs_of(job) == []


def test_a_run_committed_after_the_removal_of_its_job_is_left_out(
    rig_factory: Callable[..., LocalRig],
) -> None:
    """Several workers: a fire passed its last check in one worker, the notice is
    handled in another before the first commits its batch."""
    rig = rig_factory()
    job, kept = make_job("gone"), make_job("kept")
    batch = FireBatch(known_done=set())
    for fired in (fire_of(job), fire_of(kept)):
        assert rig.runtime.handle(fired, batch=batch).disposition == "done"
    rig.runtime.forget(_notice(job))

    ledger = rig.runtime.ledger
    assert isinstance(ledger, SqliteFireLedger)
    rig.dispatcher.queue.complete(
        runs=batch.runs, run_repository=rig.runs, done=batch.done, ledger=ledger
    )

    assert rig.runs_of(job) == []
    assert [run.fire_id for run in rig.runs_of(kept)] == [fire_of(kept).fire_id]


def test_a_notice_that_fails_is_tried_again(
    rig_factory: Callable[..., LocalRig], monkeypatch: Any
) -> None:
    rig = rig_factory(retry_base_s=0.05, retry_max_s=0.05)
    job = make_job("gone")
    rig.runs.record_many([("alice", run) for run in _runs(job)])
    forget = rig.runtime.forget
    failures = iter([RuntimeError("state store unavailable")])

    def flaky(removed: JobRemoved) -> None:
        error = next(failures, None)
        if error is not None:
            raise error
        forget(removed)

    monkeypatch.setattr(rig.runtime, "forget", flaky)
    rig.dispatcher.start()
    rig.dispatcher.publish_payloads([removal_row(_notice(job))])
    assert rig.dispatcher.wait_idle(timeout=20)

    assert rig.runs_of(job) == []
    assert rig.dead.list() == []
    assert _queued(rig) == 0


def _runs(job: AlphaJob) -> list[Any]:
    from .test_sqlite_runs import run_at  # type: ignore[import-not-found]

    return [run_at(job.job_id, minute) for minute in range(2)]


def test_deleted_job_marks_expire_at_start_and_while_running(tmp_path: Path) -> None:
    db = tmp_path / "scheduler.db"
    ledger = SqliteFireLedger(db)
    ledger.forget_job("alice", "old")
    ledger.forget_job("alice", "new")
    with ledger._tx() as conn:  # deleted long before the marks' TTL
        conn.execute("UPDATE jobs_removed SET removed_at = 0 WHERE job_key = 'alice/old'")
    assert ledger.is_removed("alice/old")  # this process still holds it

    restarted = SqliteFireLedger(db)
    assert not restarted.is_removed("alice/old")
    assert restarted.is_removed("alice/new")

    with ledger._tx() as conn:
        conn.execute("INSERT INTO jobs_removed VALUES ('alice/older', 0)")
    ledger.removed_prune_interval_s = 0.0  # the next deletion also prunes
    ledger.forget_job("alice", "newest")
    assert not ledger.is_removed("alice/old")
    assert not ledger.is_removed("alice/older")
    assert ledger.is_removed("alice/new")
    assert ledger.is_removed("alice/newest")


def test_the_sqlite_lookup_answers_as_the_single_reads_do(tmp_path: Path) -> None:
    ledger = SqliteFireLedger(tmp_path / "scheduler.db")
    ledger.mark_done("j1@1")
    ledger.forget_job("alice", "j2")
    ledger.add_failure("alice/j1")
    assert ledger.lookup("j1@1", "alice/j1", failures=True) == FireLookup(True, False, 1)
    assert ledger.lookup("j1@2", "alice/j1") == FireLookup(False, False, 0)
    assert ledger.lookup("j2@1", "alice/j2", failures=True) == FireLookup(False, True, 0)
    restarted = SqliteFireLedger(tmp_path / "scheduler.db")
    assert restarted.lookup("j1@1", "alice/j1", failures=True) == FireLookup(True, False, 1)
