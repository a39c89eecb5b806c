"""Reconciler and fault tests: crash between store write and sync, drift behind our back."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from serverless_scheduler_common.events import JobChange, JobRemoved
from serverless_scheduler_common.settings import Settings
from serverless_scheduler_schedulers import lambda_reconcile
from serverless_scheduler_schedulers.eventbridge import EventBridgeScheduleBackend, schedule_name
from serverless_scheduler_schedulers.local_engine import ChangeFeedPump, LocalScheduleBackend
from serverless_scheduler_schedulers.reconcile import reconcile


def _eb(aws: dict[str, Any]) -> EventBridgeScheduleBackend:
    return EventBridgeScheduleBackend(
        aws["scheduler"],
        group_name=aws["group_name"],
        topic_arn=aws["topic_arn"],
        role_arn=aws["role_arn"],
        dlq_arn=aws["dlq_arn"],
    )


def test_eventbridge_drift_behind_our_back_is_repaired(
    aws: dict[str, Any], make_job: Any, registry: Any
) -> None:
    """Fault (d) on AWS: deleted, altered, orphaned and foreign schedules."""
    backend = _eb(aws)
    jobs = [make_job(f"j{i}") for i in range(4)]
    for job in [*jobs, make_job("gone")]:
        backend.upsert(job)
    client, group = aws["scheduler"], aws["group_name"]
    client.delete_schedule(Name=schedule_name("alice", "j0"), GroupName=group)
    altered = client.get_schedule(Name=schedule_name("alice", "j1"), GroupName=group)
    client.update_schedule(
        Name=altered["Name"],
        GroupName=group,
        ScheduleExpression="rate(1 hours)",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": aws["topic_arn"], "RoleArn": aws["role_arn"], "Input": "{}"},
        Description=altered["Description"],
    )
    client.update_schedule(  # paused by hand
        **{
            k: v
            for k, v in client.get_schedule(
                Name=schedule_name("alice", "j2"), GroupName=group
            ).items()
            if k
            in (
                "Name",
                "GroupName",
                "ScheduleExpression",
                "FlexibleTimeWindow",
                "Target",
                "Description",
            )
        },
        State="DISABLED",
    )
    client.create_schedule(
        Name="made-by-hand",
        GroupName=group,
        ScheduleExpression="rate(5 minutes)",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": aws["topic_arn"], "RoleArn": aws["role_arn"]},
    )
    past_at = make_job("once", schedule={"kind": "at", "at": "2026-01-02T00:00:00Z"})
    snapshots = [j.snapshot() for j in [*jobs, past_at]]

    report = reconcile(snapshots, backend, registry)
    assert (report.created, report.updated, report.deleted) == (1, 2, 2), report.as_dict()
    assert (report.unchanged, report.done, report.errors) == (1, 1, [])
    again = reconcile(snapshots, backend, registry)
    assert again.repaired == 0 and again.unchanged == 4
    names = {s["Name"] for s in client.list_schedules(GroupName=group)["Schedules"]}
    assert names == {schedule_name("alice", f"j{i}") for i in range(4)}


def test_local_drift_is_repaired(tmp_path: Path, make_job: Any, registry: Any) -> None:
    """Fault (d) locally: a row deleted, a row edited, an orphan row."""
    db = tmp_path / "scheduler.db"
    backend = LocalScheduleBackend(db)
    jobs = [make_job(f"j{i}") for i in range(3)]
    backend.upsert_many([*jobs, make_job("orphan")])
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM schedules WHERE job_id = 'j0'")
        row = json.loads(conn.execute("SELECT job FROM schedules WHERE job_id='j1'").fetchone()[0])
        row["schedule"]["every"] = 1
        conn.execute("UPDATE schedules SET job = ? WHERE job_id = 'j1'", (json.dumps(row),))
    report = reconcile([j.snapshot() for j in jobs], backend, registry)
    assert (report.created, report.updated, report.deleted, report.unchanged) == (1, 1, 1, 1)
    assert reconcile([j.snapshot() for j in jobs], backend, registry).repaired == 0
    state = backend.get("alice", "j1")
    assert state is not None and state.definition["schedule"]["every"] == 5


class TinyStore:
    """A jobs table and its outbox written in one transaction (like the items store)."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.executescript(
            "CREATE TABLE IF NOT EXISTS jobs (job_id TEXT PRIMARY KEY, data TEXT);"
            "CREATE TABLE IF NOT EXISTS outbox (pos INTEGER PRIMARY KEY, change TEXT);"
        )

    def write(self, change: JobChange) -> None:
        self.conn.execute("BEGIN")
        if change.new is not None:
            self.conn.execute(
                "INSERT OR REPLACE INTO jobs VALUES (?, ?)", (change.job_id, json.dumps(change.new))
            )
        else:
            self.conn.execute("DELETE FROM jobs WHERE job_id = ?", (change.job_id,))
        self.conn.execute("INSERT INTO outbox (change) VALUES (?)", (change.model_dump_json(),))
        self.conn.execute("COMMIT")

    def jobs(self) -> list[dict[str, Any]]:
        return [json.loads(r[0]) for r in self.conn.execute("SELECT data FROM jobs")]

    def poll(self, limit: int = 100) -> Sequence[tuple[int, JobChange]]:
        rows = self.conn.execute("SELECT pos, change FROM outbox ORDER BY pos LIMIT ?", (limit,))
        return [(pos, JobChange.model_validate_json(c)) for pos, c in rows]

    def ack(self, positions: Sequence[int]) -> None:
        self.conn.executemany("DELETE FROM outbox WHERE pos = ?", [(p,) for p in positions])


class Killed(BaseException):
    """The process dies (nothing in the sync path may swallow it)."""


class DiesOnUpsert(LocalScheduleBackend):
    def upsert(self, job: Any) -> None:
        raise Killed


def test_killed_between_store_write_and_sync(
    tmp_path: Path, make_job: Any, changes: Any, registry: Any
) -> None:
    """Fault (c): the next run drains the outbox; a lost change is left to the reconciler."""
    db = tmp_path / "scheduler.db"
    store = TinyStore(db)
    store.write(changes(make_job("a"), "insert"))
    with pytest.raises(Killed):
        ChangeFeedPump(store, DiesOnUpsert(db), registry=registry).drain()
    # next start: a fresh process drains what was not acknowledged
    backend = LocalScheduleBackend(db)
    assert backend.get("alice", "a") is None
    assert ChangeFeedPump(store, backend, registry=registry).drain() == 1
    assert backend.get("alice", "a") is not None
    assert store.poll() == []

    # a change that never reached the feed (e.g. an expired stream record)
    store.write(changes(make_job("b"), "insert"))
    store.ack([p for p, _ in store.poll()])
    store.write(changes(make_job("a", version=2), "remove"))
    store.ack([p for p, _ in store.poll()])
    report = reconcile(store.jobs(), backend, registry)
    assert (report.created, report.deleted) == (1, 1)
    assert [s.job_id for s in backend.list()] == ["b"]


def test_pump_skips_poison_changes_and_keeps_transient_ones(
    tmp_path: Path, make_job: Any, changes: Any
) -> None:
    store = TinyStore(tmp_path / "s.db")
    bad = JobChange(kind="insert", owner_id="alice", job_id="x", version=1, new={"job_id": "x"})
    store.write(bad)
    store.write(changes(make_job("ok"), "insert"))
    backend = LocalScheduleBackend(tmp_path / "s.db")
    assert ChangeFeedPump(store, backend).drain() == 2
    assert [s.job_id for s in backend.list()] == ["ok"]


def _plugin_inbox(aws: dict[str, Any], name: str, job_types: list[str] | None = None) -> str:
    """A queue subscribed to the distribution topic (raw delivery, filtered by job type
    when given), as a plugin's consumer queue is; returns its URL."""
    import boto3

    sqs = boto3.client("sqs", region_name="eu-west-1")
    inbox: str = sqs.create_queue(QueueName=name)["QueueUrl"]
    inbox_arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    attributes = {"RawMessageDelivery": "true"}
    if job_types is not None:
        attributes["FilterPolicy"] = json.dumps({"job_type": job_types})
    boto3.client("sns", region_name="eu-west-1").subscribe(
        TopicArn=aws["topic_arn"], Protocol="sqs", Endpoint=inbox_arn, Attributes=attributes
    )
    return inbox


def test_reconcile_lambda_with_moto(aws: dict[str, Any], make_job: Any) -> None:
    import boto3

    ddb = boto3.client("dynamodb", region_name="eu-west-1")
    ddb.create_table(
        TableName="jobs",
        KeySchema=[
            {"AttributeName": "owner_id", "KeyType": "HASH"},
            {"AttributeName": "job_id", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "owner_id", "AttributeType": "S"},
            {"AttributeName": "job_id", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    table = boto3.resource("dynamodb", region_name="eu-west-1").Table("jobs")
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    for job in [make_job("a"), make_job("b", schedule={"kind": "at", "at": future})]:
        table.put_item(Item=json.loads(json.dumps(job.snapshot()), parse_float=Decimal))
    settings = Settings(
        jobs_table="jobs",
        schedule_group=aws["group_name"],
        topic_arn=aws["topic_arn"],
        scheduler_role_arn=aws["role_arn"],
        scheduler_dlq_arn=aws["dlq_arn"],
    )
    sqs = boto3.client("sqs", region_name="eu-west-1")
    sns = boto3.client("sns", region_name="eu-west-1")
    inbox = _plugin_inbox(aws, "plugin")
    run = lambda_reconcile.build(
        settings, scheduler_client=aws["scheduler"], dynamodb_client=ddb, sns_client=sns
    )
    lambda_reconcile._run = run
    try:
        first = lambda_reconcile.handler({}, None)
        second = lambda_reconcile.handler({}, None)
        # Job a's deletion never reached the sync function: its schedule is an orphan,
        # announced to its plugin before it goes.
        table.delete_item(Key={"owner_id": "alice", "job_id": "a"})
        third = lambda_reconcile.handler({}, None)
    finally:
        lambda_reconcile._run = None
    assert (first["created"], first["repaired"]) == (2, 2)
    assert (second["repaired"], second["unchanged"]) == (0, 2)
    assert (third["deleted"], third["announced"], third["unchanged"]) == (1, 1, 1)
    from serverless_scheduler_common.runtime.sqs import event_from_body

    [message] = sqs.receive_message(QueueUrl=inbox, MaxNumberOfMessages=10)["Messages"]
    notice = event_from_body(message["Body"])
    assert (notice.owner_id, notice.job_id, notice.job_type) == ("alice", "a", "ping_job")


def test_handlers_name_missing_settings() -> None:
    with pytest.raises(RuntimeError, match="SCHEDULER_JOBS_TABLE"):
        lambda_reconcile.build(Settings())


class CountingBackend(LocalScheduleBackend):
    """Counts `upsert_many` calls; `fail_batches` makes them fail, `bad` one job's upsert."""

    def __init__(self, db: Path, *, fail_batches: bool = False, bad: str = "") -> None:
        super().__init__(db)
        self.batches: list[int] = []
        self.fail_batches, self.bad = fail_batches, bad

    def upsert_many(self, jobs: Any, *, period_s: float | None = None) -> int:
        jobs = list(jobs)
        self.batches.append(len(jobs))
        if self.fail_batches:
            raise sqlite3.OperationalError("disk I/O error")
        return super().upsert_many(jobs, period_s=period_s)

    def upsert(self, job: Any) -> None:
        if job.job_id == self.bad:
            raise sqlite3.OperationalError("database is locked")
        super().upsert_many([job])


def test_mass_drift_is_repaired_in_batches_with_bounded_logs(
    tmp_path: Path, make_job: Any, registry: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A restored backup without its schedules: one repair per job."""
    jobs = [make_job(f"j{i:04d}") for i in range(2500)]
    backend = CountingBackend(tmp_path / "scheduler.db")
    with caplog.at_level("WARNING", logger="serverless_scheduler_schedulers.reconcile"):
        report = reconcile([j.snapshot() for j in jobs], backend, registry)
    assert (report.created, report.errors) == (2500, [])
    assert backend.batches == [1000, 1000, 500]  # not 2,500 transactions
    assert len(list(backend.list())) == 2500
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 21  # 20 in full, then one line for the rest
    assert warnings[-1] == "... and 2480 more schedules missing: created"
    assert reconcile([j.snapshot() for j in jobs], backend, registry).repaired == 0


def test_a_failed_batch_is_repaired_one_by_one_and_errors_name_the_job(
    tmp_path: Path, make_job: Any, registry: Any
) -> None:
    jobs = [make_job(f"j{i}") for i in range(5)]
    backend = CountingBackend(tmp_path / "scheduler.db", fail_batches=True, bad="j3")
    report = reconcile([j.snapshot() for j in jobs], backend, registry)
    assert report.created == 4
    assert report.errors == ["repairing alice/j3 failed: database is locked"]
    assert sorted(s.job_id for s in backend.list()) == ["j0", "j1", "j2", "j4"]


def test_the_pump_reports_applied_removals_before_it_acknowledges_them(
    tmp_path: Path, make_job: Any, changes: Any, registry: Any, caplog: pytest.LogCaptureFixture
) -> None:
    store = TinyStore(tmp_path / "scheduler.db")
    seen: list[tuple[str, str, int]] = []

    def on_removed(change: JobChange) -> None:
        assert change.kind == "remove" and change.old is not None
        assert change.old["job_id"] == change.job_id  # the last image comes along
        seen.append((change.owner_id, change.job_id, len(store.poll())))  # unacknowledged
        if change.job_id == "b":
            raise sqlite3.OperationalError("database is locked")

    backend = LocalScheduleBackend(tmp_path / "scheduler.db")
    for job_id in ("a", "b", "c"):
        store.write(changes(make_job(job_id), "insert"))
    store.write(changes(make_job("a", version=2), "remove"))
    store.write(changes(make_job("b", version=2), "remove"))
    pump = ChangeFeedPump(store, backend, registry=registry, on_removed=on_removed)
    assert pump.drain() == 5
    assert seen == [("alice", "a", 5), ("alice", "b", 5)]  # inserts are not reported
    assert "could not forget deleted job alice/b" in caplog.text  # logged, feed not held
    assert store.poll() == []
    assert [s.job_id for s in backend.list()] == ["c"]


def test_an_orphan_schedule_is_announced_as_a_removal_before_it_is_deleted(
    tmp_path: Path, make_job: Any, registry: Any
) -> None:
    """A job whose deletion never synced: its plugin hears of it as after any deletion."""
    backend = LocalScheduleBackend(tmp_path / "scheduler.db")
    kept, gone = make_job("kept"), make_job("gone", version=4)
    backend.upsert_many([kept, gone])
    notices: list[JobRemoved] = []

    dry = reconcile(
        [kept.snapshot()], backend, registry, dry_run=True, announce_removed=notices.append
    )
    assert (dry.deleted, dry.announced, notices) == (1, 0, [])  # a dry run announces nothing
    assert backend.get("alice", "gone") is not None

    report = reconcile([kept.snapshot()], backend, registry, announce_removed=notices.append)
    assert (report.deleted, report.announced, report.errors) == (1, 1, [])
    assert notices == [JobRemoved(job_type="ping_job", job_id="gone", owner_id="alice", version=4)]
    assert backend.get("alice", "gone") is None
    assert (
        reconcile([kept.snapshot()], backend, registry, announce_removed=notices.append).repaired
        == 0
    )
    assert len(notices) == 1


def test_an_orphan_whose_notice_fails_keeps_its_schedule_for_the_next_run(
    tmp_path: Path, make_job: Any, registry: Any
) -> None:
    backend = LocalScheduleBackend(tmp_path / "scheduler.db")
    backend.upsert_many([make_job("gone")])

    def refuse(notice: JobRemoved) -> None:
        raise OSError("disk full")

    report = reconcile([], backend, registry, announce_removed=refuse)
    assert (report.deleted, report.announced) == (0, 0)
    assert report.errors == [
        "announcing the removal of alice/gone failed (its schedule is kept): disk full"
    ]
    assert backend.get("alice", "gone") is not None  # found, and announced, next time
    notices: list[JobRemoved] = []
    assert reconcile([], backend, registry, announce_removed=notices.append).deleted == 1
    assert [n.job_id for n in notices] == ["gone"]


def test_a_job_created_while_the_jobs_are_read_is_not_taken_for_an_orphan(
    tmp_path: Path, make_job: Any, registry: Any
) -> None:
    """The jobs read already passed the new job when its schedule was synced: had the
    schedules been listed afterwards, it would look like a schedule without a job, and
    its removal notice would have the runtime drop the new job's fires."""
    backend = LocalScheduleBackend(tmp_path / "scheduler.db")
    first = make_job("first")
    backend.upsert_many([first])

    def scan() -> Any:
        yield first.snapshot()
        backend.upsert_many([make_job("late")])  # created and synced meanwhile

    notices: list[JobRemoved] = []
    report = reconcile(scan(), backend, registry, announce_removed=notices.append)
    assert (report.deleted, notices, report.errors) == (0, [], [])
    assert backend.get("alice", "late") is not None


def test_eventbridge_orphans_are_announced_on_the_distribution_topic(
    aws: dict[str, Any], make_job: Any, registry: Any
) -> None:
    """On AWS the notice goes out as the sync sends it: `SnsPublisher.publish_removed`,
    routed by job type to the plugin's queue."""
    import boto3

    from serverless_scheduler_common.runtime.sns import SnsPublisher
    from serverless_scheduler_common.runtime.sqs import event_from_body

    sqs = boto3.client("sqs", region_name="eu-west-1")
    sns = boto3.client("sns", region_name="eu-west-1")
    inbox = _plugin_inbox(aws, "ping-plugin", job_types=["ping_job"])
    backend = _eb(aws)
    kept = make_job("kept")
    for job in (kept, make_job("gone", version=3)):
        backend.upsert(job)
    backend.upsert(make_job("other", owner_id="bob"))
    aws["scheduler"].create_schedule(  # not ours: deleted, but no job to announce
        Name="made-by-hand",
        GroupName=aws["group_name"],
        ScheduleExpression="rate(5 minutes)",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": aws["topic_arn"], "RoleArn": aws["role_arn"]},
    )
    topic = SnsPublisher(sns, aws["topic_arn"])

    report = reconcile([kept.snapshot()], backend, registry, announce_removed=topic.publish_removed)
    assert (report.deleted, report.announced, report.errors) == (3, 2, [])
    messages = sqs.receive_message(QueueUrl=inbox, MaxNumberOfMessages=10)["Messages"]
    notices = sorted((event_from_body(m["Body"]) for m in messages), key=lambda n: n.owner_id)
    assert notices == [
        JobRemoved(job_type="ping_job", job_id="gone", owner_id="alice", version=3),
        JobRemoved(job_type="ping_job", job_id="other", owner_id="bob", version=1),
    ]
    names = {
        s["Name"] for s in aws["scheduler"].list_schedules(GroupName=aws["group_name"])["Schedules"]
    }
    assert names == {schedule_name("alice", "kept")}
