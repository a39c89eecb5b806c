"""`serverless-scheduler dlq list|redrive|purge` on a local data directory."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from serverless_scheduler.cli import main
from serverless_scheduler_common import JobFired, Settings
from serverless_scheduler_common.runtime.local import create_local_dispatcher
from serverless_scheduler_common.runtime.ports import DeadLetter
from serverless_scheduler_common.runtime.sqlite import SqliteDeadLetterStore, SqliteFireQueue
from serverless_scheduler_common.sqlite import db_path_for
from serverless_scheduler_example.plugin import ExampleJob
from serverless_scheduler_items.sqlite_repository import SqliteJobRepository


def _dead_letter(
    data_dir: Path,
    job_id: str = "job1",
    dead_at: datetime | None = None,
    store: SqliteDeadLetterStore | None = None,
) -> JobFired:
    """A dead letter of an `example_job`, written as it is (by default through a store
    that expires nothing)."""
    dead_at = dead_at or datetime.now(UTC)
    fired = JobFired(
        job_type="example_job",
        job_id=job_id,
        owner_id="alice",
        scheduled_time=dead_at - timedelta(minutes=5),
        job={
            "job_type": "example_job",
            "job_id": job_id,
            "owner_id": "alice",
            "name": "hello",
            "schedule": {"kind": "rate", "every": 5, "unit": "minutes"},
            "message": "again",
        },
    )
    store = store or SqliteDeadLetterStore(db_path_for(data_dir), retention_s=None)
    store.add(
        DeadLetter(
            fire_id=fired.fire_id,
            job_type=fired.job_type,
            job_id=fired.job_id,
            owner_id=fired.owner_id,
            payload=fired.model_dump_json(),
            error="RuntimeError: boom",
            attempts=5,
            dead_at=dead_at,
        )
    )
    return fired


def test_list_then_redrive_runs_the_fire_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The redriven fire carries the job as stored now: the operator fixed its cause
    after the fire died (here its message), and the run uses the fix."""
    job = SqliteJobRepository(db_path_for(tmp_path)).create(
        ExampleJob(
            owner_id="alice", name="hello", schedule={"kind": "rate", "every": 5}, message="fixed"
        )
    )
    fired = _dead_letter(tmp_path, job_id=job.job_id)  # died with message "again"
    gone = _dead_letter(tmp_path, job_id="deleted-meanwhile")
    assert main(["dlq", "list", "--data-dir", str(tmp_path), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out.strip().splitlines()[0])
    assert (listed["fire_id"], listed["attempts"], listed["error"]) == (
        fired.fire_id,
        5,
        "RuntimeError: boom",
    )

    assert main(["dlq", "redrive", "--data-dir", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert f"redriven\t{fired.fire_id}" in out
    assert f"dropped\t{gone.fire_id}\t(its job was deleted)" in out
    assert "1 fire(s) redriven, 1 dropped" in err
    assert main(["dlq", "list", "--data-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out == ""

    # the next start of local mode runs it (example plugin, installed in the workspace)
    dispatcher = create_local_dispatcher(Settings(data_dir=tmp_path), workers=1)
    dispatcher.start()
    try:
        assert dispatcher.wait_idle(timeout=10)
    finally:
        dispatcher.stop(drain=True, timeout=5)
    [run] = dispatcher.runtime.runs.list("alice", job.job_id).items
    assert (run.status, run.summary) == ("ok", "logged: fixed")
    assert dispatcher.runtime.runs.list("alice", gone.job_id).items == []


def test_redrive_of_one_fire_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fired = _dead_letter(tmp_path)
    assert main(["dlq", "redrive", "--data-dir", str(tmp_path), "--fire-id", "other"]) == 0
    assert "0 fire(s) redriven" in capsys.readouterr().err
    assert [d.fire_id for d in SqliteDeadLetterStore(db_path_for(tmp_path)).list()] == [
        fired.fire_id
    ]


def test_missing_database_and_bad_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["dlq", "list", "--data-dir", str(tmp_path / "none")]) == 0
    assert "no dead letters" in capsys.readouterr().out
    assert not (tmp_path / "none").exists()
    assert main(["dlq", "list", "--data-dir", str(tmp_path), "--limit", "0"]) == 2
    assert "--limit" in capsys.readouterr().err
    assert main(["dlq", "list", "--aws"]) == 2
    assert "--queue-url" in capsys.readouterr().err


def test_purge_drops_named_or_all_letters_without_running_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = _dead_letter(tmp_path, "job1")
    second = _dead_letter(tmp_path, "job2")
    third = _dead_letter(tmp_path, "job3")
    assert main(["dlq", "purge", "--data-dir", str(tmp_path)]) == 2
    assert "--fire-id, or pass --all" in capsys.readouterr().err
    assert main(["dlq", "purge", "--data-dir", str(tmp_path), "--all", "--fire-id", "x"]) == 2
    capsys.readouterr()

    assert main(["dlq", "purge", "--data-dir", str(tmp_path), "--fire-id", second.fire_id]) == 0
    captured = capsys.readouterr()
    assert captured.out == f"purged\t{second.fire_id}\n"
    assert "1 fire(s) purged" in captured.err
    store = SqliteDeadLetterStore(db_path_for(tmp_path))
    assert sorted(d.fire_id for d in store.list()) == sorted([first.fire_id, third.fire_id])

    assert main(["dlq", "purge", "--data-dir", str(tmp_path), "--all", "--limit", "1"]) == 0
    assert len(store.list()) == 1  # --limit bounds --all too
    assert main(["dlq", "purge", "--data-dir", str(tmp_path), "--all"]) == 0
    assert store.list() == []
    # nothing was queued to run
    assert SqliteFireQueue(db_path_for(tmp_path)).count() == 0


def test_letters_past_the_retention_are_dropped_unless_it_is_off(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    now = datetime.now(UTC)
    old = _dead_letter(tmp_path, "old", dead_at=now - timedelta(days=20))
    recent = _dead_letter(tmp_path, "recent", dead_at=now - timedelta(days=2))
    monkeypatch.setenv("SCHEDULER_DEAD_LETTER_RETENTION_DAYS", "0")  # kept until purged
    assert main(["dlq", "list", "--data-dir", str(tmp_path), "--json"]) == 0
    listed = [json.loads(line)["fire_id"] for line in capsys.readouterr().out.splitlines()]
    assert listed == [old.fire_id, recent.fire_id]

    monkeypatch.delenv("SCHEDULER_DEAD_LETTER_RETENTION_DAYS")  # the default, 14 days
    assert main(["dlq", "list", "--data-dir", str(tmp_path), "--json"]) == 0
    listed = [json.loads(line)["fire_id"] for line in capsys.readouterr().out.splitlines()]
    assert listed == [recent.fire_id]


def test_adding_a_letter_drops_expired_ones(tmp_path: Path) -> None:
    _dead_letter(tmp_path, "stale", dead_at=datetime.now(UTC) - timedelta(hours=2))
    store = SqliteDeadLetterStore(db_path_for(tmp_path), retention_s=24 * 3600)
    assert len(store.list()) == 1  # inside a day's retention
    store.retention_s = 3600
    fresh = _dead_letter(tmp_path, "fresh", store=store)  # it drops the expired one
    assert [d.fire_id for d in store.list()] == [fresh.fire_id]
    with pytest.raises(ValueError, match="retention_s"):
        SqliteDeadLetterStore(db_path_for(tmp_path), retention_s=0)


def test_aws_redrive_takes_the_region_from_the_queue_url_and_the_stored_jobs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    moto = pytest.importorskip("moto")
    import boto3

    from serverless_scheduler_common.runtime.sqs import SqsDeadLetterStore
    from serverless_scheduler_items.dynamodb_repository import (
        DynamoDBJobRepository,
        jobs_table_definition,
    )

    for name in ("AWS_DEFAULT_REGION", "AWS_REGION", "SCHEDULER_AWS_REGION"):
        monkeypatch.delenv(name, raising=False)  # the region comes from the queue URL
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    region = "eu-central-1"
    with moto.mock_aws():
        sqs = boto3.client("sqs", region_name=region)
        sns = boto3.client("sns", region_name=region)
        ddb = boto3.client("dynamodb", region_name=region)
        dlq_url = sqs.create_queue(QueueName="example-dlq")["QueueUrl"]
        assert f"sqs.{region}.amazonaws.com" in dlq_url
        inbox, topic = _topic_with_inbox(sqs, sns)
        ddb.create_table(**jobs_table_definition("jobs"))
        job = DynamoDBJobRepository(ddb, "jobs").create(
            ExampleJob(
                owner_id="alice",
                name="hello",
                schedule={"kind": "rate", "every": 5},
                message="fixed",
            )
        )
        store = SqsDeadLetterStore(sqs, dlq_url, visibility_s=0)
        for job_id in (job.job_id, "deleted-meanwhile"):
            fired = _dead_letter(tmp_path, job_id=job_id)
            store.add(DeadLetter.of(fired, error="RuntimeError: boom", attempts=5))

        base = ["dlq", "redrive", "--aws", "--queue-url", dlq_url, "--topic-arn", topic]
        assert main([*base, "--jobs-table", "jobs"]) == 0
        out, err = capsys.readouterr()
        assert "1 fire(s) redriven, 1 dropped" in err, err
        assert "dropped\t" in out and "deleted-meanwhile" in out

        [message] = sqs.receive_message(QueueUrl=inbox, MaxNumberOfMessages=10)["Messages"]
        redriven = JobFired.model_validate_json(message["Body"])
        assert (redriven.job_id, redriven.job["message"]) == (job.job_id, "fixed")
        assert SqsDeadLetterStore(sqs, dlq_url, visibility_s=0).list() == []

    assert main(["dlq", "list", "--aws", "--queue-url", "https://example.com/q"]) == 2
    assert "SCHEDULER_AWS_REGION" in capsys.readouterr().err


def test_aws_letters_that_are_not_fires_are_listed_purgeable_and_not_redriven_as_fires(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A body no consumer could read, or a removal notice whose plugin kept failing, lands
    in the plugin's DLQ too: `list` shows it (so the queue's alarm can be explained),
    `purge` removes it by its id, `redrive` publishes a removal notice again and skips
    what it cannot read, saying so."""
    moto = pytest.importorskip("moto")
    import functools

    import boto3

    from serverless_scheduler_common.events import JobRemoved
    from serverless_scheduler_common.runtime import sqs as sqs_adapter
    from serverless_scheduler_common.runtime.sqs import SqsDeadLetterStore, event_from_body

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("SCHEDULER_AWS_REGION", "eu-west-1")
    # Each command lists the queue again at once: nothing stays hidden between them.
    monkeypatch.setattr(
        sqs_adapter,
        "SqsDeadLetterStore",
        functools.partial(SqsDeadLetterStore, visibility_s=0),
    )
    notice = JobRemoved(job_type="example_job", job_id="gone", owner_id="alice", version=3)
    with moto.mock_aws():
        sqs = boto3.client("sqs", region_name="eu-west-1")
        sns = boto3.client("sns", region_name="eu-west-1")
        dlq_url = sqs.create_queue(QueueName="example-dlq")["QueueUrl"]
        inbox, topic = _topic_with_inbox(sqs, sns)
        fired = _dead_letter(tmp_path, job_id="job1")
        bodies = [
            fired.model_dump_json(),
            "not json at all",
            json.dumps({"Type": "Notification", "Message": 7}),
            json.dumps({"Type": "Notification", "Message": notice.model_dump_json()}),
        ]
        for body in bodies:
            sqs.send_message(QueueUrl=dlq_url, MessageBody=body)
        aws = ["--aws", "--queue-url", dlq_url]

        assert main(["dlq", "list", *aws, "--json"]) == 0
        listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        kinds = sorted((letter["kind"], letter["job_id"]) for letter in listed)
        assert kinds == [
            ("fire", "job1"),
            ("removal", "gone"),
            ("unreadable", ""),
            ("unreadable", ""),
        ]
        others = [letter for letter in listed if letter["kind"] != "fire"]
        assert all(letter["fire_id"].startswith("message:") for letter in others)
        assert all(
            letter["error"].startswith(("unreadable:", "removal notice:")) for letter in others
        )
        assert main(["dlq", "list", *aws]) == 0
        err = capsys.readouterr().err
        assert "1 dead-lettered fire(s) and 1 removal notice(s), 2 unreadable" in err

        assert main(["dlq", "redrive", *aws, "--topic-arn", topic]) == 0
        out, err = capsys.readouterr()
        assert f"redriven\t{fired.fire_id}\n" in out
        removal_id = next(letter["fire_id"] for letter in others if letter["kind"] == "removal")
        assert f"redriven\t{removal_id}\t(a removal notice)" in out
        unreadable = sorted(letter["fire_id"] for letter in others if letter["kind"] != "removal")
        skipped = sorted(
            line.split("\t")[1] for line in out.splitlines() if line.startswith("skipped")
        )
        assert skipped == unreadable
        assert f"dlq purge --id {unreadable[0]}" in out
        assert "1 fire(s) redriven, 0 dropped, 1 removal notice(s) redriven, 2 skipped" in err
        published = [
            event_from_body(m["Body"])
            for m in sqs.receive_message(QueueUrl=inbox, MaxNumberOfMessages=10)["Messages"]
        ]
        assert sorted(published, key=lambda e: type(e).__name__) == [fired, notice]

        # the unreadable ones stay until purged, by id or with --all
        left = SqsDeadLetterStore(sqs, dlq_url, visibility_s=0).list()
        assert sorted(letter.fire_id for letter in left) == unreadable
        assert main(["dlq", "purge", *aws, "--id", unreadable[0]]) == 0
        assert capsys.readouterr().out == f"purged\t{unreadable[0]}\n"
        assert main(["dlq", "purge", *aws, "--all"]) == 0
        assert capsys.readouterr().out == f"purged\t{unreadable[1]}\n"
        assert SqsDeadLetterStore(sqs, dlq_url, visibility_s=0).list() == []


def test_a_local_letter_that_is_not_a_fire_is_skipped_by_redrive_and_purgeable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same rules for the local store (a letter written by hand, or damaged)."""
    job = SqliteJobRepository(db_path_for(tmp_path)).create(
        ExampleJob(owner_id="alice", name="hello", schedule={"kind": "rate", "every": 5})
    )
    fired = _dead_letter(tmp_path, job_id=job.job_id)
    store = SqliteDeadLetterStore(db_path_for(tmp_path), retention_s=None)
    store.add(
        DeadLetter(
            fire_id="damaged",
            job_type="example_job",
            job_id="job2",
            owner_id="alice",
            payload="{not a fire",
            error="RuntimeError: boom",
            attempts=5,
            dead_at=datetime.now(UTC),
        )
    )
    assert main(["dlq", "list", "--data-dir", str(tmp_path), "--json"]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert sorted((d["fire_id"], d["kind"]) for d in listed) == sorted(
        [(fired.fire_id, "fire"), ("damaged", "unreadable")]
    )
    assert main(["dlq", "redrive", "--data-dir", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert "skipped\tdamaged\t(unreadable" in out
    assert "1 fire(s) redriven, 0 dropped, 1 skipped" in err
    assert [d.fire_id for d in store.list()] == ["damaged"]
    assert SqliteFireQueue(db_path_for(tmp_path)).count() == 1  # only the fire
    assert main(["dlq", "purge", "--data-dir", str(tmp_path), "--id", "damaged"]) == 0
    assert store.list() == []


def _topic_with_inbox(sqs: Any, sns: Any) -> tuple[str, str]:
    """The distribution topic and a plugin queue subscribed to it (raw delivery):
    (queue URL, topic ARN)."""
    inbox: str = sqs.create_queue(QueueName="example")["QueueUrl"]
    inbox_arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    topic: str = sns.create_topic(Name="distribution")["TopicArn"]
    sns.subscribe(
        TopicArn=topic,
        Protocol="sqs",
        Endpoint=inbox_arn,
        Attributes={"RawMessageDelivery": "true"},
    )
    return inbox, topic


def test_redrive_queues_a_fire_in_its_jobs_dispatch_partition(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from serverless_scheduler_common.ports import fire_shard
    from serverless_scheduler_common.runtime.partitions import arrange, partition_path

    arrange(tmp_path, 2)  # `serve` last ran two dispatcher processes
    repo = SqliteJobRepository(db_path_for(tmp_path))
    jobs = [
        repo.create(
            ExampleJob(owner_id="alice", name=f"job {i}", schedule={"kind": "rate", "every": 5})
        )
        for i in range(6)
    ]
    for job in jobs:
        _dead_letter(tmp_path, job_id=job.job_id)
    assert main(["dlq", "redrive", "--data-dir", str(tmp_path)]) == 0
    assert "6 fire(s) redriven" in capsys.readouterr().err
    assert SqliteFireQueue(db_path_for(tmp_path)).count() == 0
    for index in (0, 1):
        queued = SqliteFireQueue(partition_path(tmp_path, index, 2))._query(
            "SELECT fire_id FROM dispatch_queue"
        )
        assert sorted(str(f).split("@")[0] for (f,) in queued) == sorted(
            job.job_id for job in jobs if fire_shard(job.job_id) % 2 == index
        )
