"""The sync Lambda handler with real stream payloads, partial failures and throttling."""

from __future__ import annotations

import json
import random
from decimal import Decimal
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from serverless_scheduler_common.settings import Settings
from serverless_scheduler_schedulers import lambda_sync
from serverless_scheduler_schedulers.eventbridge import EventBridgeScheduleBackend
from serverless_scheduler_schedulers.reconcile import reconcile
from serverless_scheduler_schedulers.streams import StreamSync, change_from_record

EVENTS = Path(__file__).resolve().parents[2] / "tests" / "events"


def load_event(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return data


def _settings(aws: dict[str, Any]) -> Settings:
    return Settings(
        aws_region="eu-west-1",
        jobs_table="jobs",
        schedule_group=aws["group_name"],
        topic_arn=aws["topic_arn"],
        scheduler_role_arn=aws["role_arn"],
        scheduler_dlq_arn=aws["dlq_arn"],
    )


def _record(job: Any, kind: str, seq: int, old: Any = None) -> dict[str, Any]:
    """A stream record as DynamoDB emits it for the job item."""
    from boto3.dynamodb.types import TypeSerializer

    ser = TypeSerializer()

    def image(snapshot: dict[str, Any]) -> dict[str, Any]:
        def dec(v: Any) -> Any:
            if isinstance(v, float):
                return Decimal(str(v))
            if isinstance(v, dict):
                return {k: dec(x) for k, x in v.items()}
            if isinstance(v, list):
                return [dec(x) for x in v]
            return v

        return {k: ser.serialize(dec(v)) for k, v in snapshot.items() if v is not None}

    body: dict[str, Any] = {
        "Keys": {"owner_id": {"S": job.owner_id}, "job_id": {"S": job.job_id}},
        "SequenceNumber": str(seq),
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    if kind == "REMOVE":
        body["OldImage"] = image(job.snapshot())
    else:
        body["NewImage"] = image(job.snapshot())
        if old is not None:
            body["OldImage"] = image(old.snapshot())
    return {
        "eventID": f"e{seq}",
        "eventName": kind,
        "eventSource": "aws:dynamodb",
        "dynamodb": body,
    }


def test_parses_real_stream_record() -> None:
    event = load_event("dynamodb_stream_batch.json")
    first = change_from_record(event["Records"][0])
    assert (first.kind, first.version, first.owner_id) == ("insert", 1, "user-1234")
    assert first.new is not None and first.new["policy"]["catchup_window_s"] == 900
    assert isinstance(first.new["policy"]["catchup_window_s"], int)
    last = change_from_record(event["Records"][3])
    assert (last.kind, last.version, last.new) == ("remove", 3, None)


def test_handler_applies_batch_in_order(aws: dict[str, Any], monkeypatch: Any) -> None:
    service = lambda_sync.build(_settings(aws), scheduler_client=aws["scheduler"])
    monkeypatch.setattr(lambda_sync, "_service", service)
    event = load_event("dynamodb_stream_batch.json")
    first_three = {"Records": event["Records"][:3]}
    assert lambda_sync.handler(first_three, None) == {"batchItemFailures": []}
    backend = service.backend
    state = backend.get("user-1234", "01jq7zexample0000000000000")
    assert state is not None and (state.version, state.enabled) == (3, True)
    assert state.definition["ScheduleExpression"] == "rate(15 minutes)"
    # the whole batch again (redelivery), ending with the REMOVE
    assert lambda_sync.handler(event, None) == {"batchItemFailures": []}
    assert backend.get("user-1234", "01jq7zexample0000000000000") is None


def test_malformed_records_go_to_the_dead_letter_queue(aws: dict[str, Any]) -> None:
    import boto3

    sqs = boto3.client("sqs", region_name="eu-west-1")
    service = lambda_sync.build(_settings(aws), scheduler_client=aws["scheduler"], sqs_client=sqs)
    reply = service.handle(load_event("dynamodb_stream_malformed.json"))
    assert reply == {"batchItemFailures": []}
    assert service.backend.get("user-1234", "01jq7zexample0000000000001") is not None
    messages = sqs.receive_message(QueueUrl=aws["dlq_url"], MaxNumberOfMessages=10)["Messages"]
    reasons = sorted(json.loads(m["Body"])["reason"] for m in messages)
    assert len(reasons) == 2
    assert any("every" in r for r in reasons)  # names the bad field


def test_each_applied_removal_is_announced_on_the_topic(aws: dict[str, Any], make_job: Any) -> None:
    import boto3

    from serverless_scheduler_common.events import JobRemoved

    sns, sqs = (boto3.client(name, region_name="eu-west-1") for name in ("sns", "sqs"))
    inbox = sqs.create_queue(QueueName="consumer")["QueueUrl"]
    inbox_arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])
    sns.subscribe(
        TopicArn=aws["topic_arn"],
        Protocol="sqs",
        Endpoint=inbox_arn["Attributes"]["QueueArn"],
        Attributes={"RawMessageDelivery": "true"},
    )
    service = lambda_sync.build(_settings(aws), scheduler_client=aws["scheduler"], sns_client=sns)
    kept, gone = make_job("kept"), make_job("gone")
    records = [
        _record(kept, "INSERT", 1),
        _record(gone, "INSERT", 2),
        _record(gone.model_copy(update={"version": 2}), "REMOVE", 3),
    ]
    assert service.handle({"Records": records}) == {"batchItemFailures": []}

    messages = sqs.receive_message(QueueUrl=inbox, MaxNumberOfMessages=10).get("Messages", [])
    notices = [JobRemoved.model_validate_json(m["Body"]) for m in messages]
    assert notices == [
        JobRemoved(job_type=gone.job_type, job_id="gone", owner_id="alice", version=2)
    ]
    assert service.stats["announced"] == 1


def test_a_removal_that_cannot_be_announced_is_delivered_again(
    aws: dict[str, Any], make_job: Any
) -> None:
    announced: list[str] = []
    down = {"sns": True}

    def announce(change: Any) -> None:
        if down["sns"]:
            raise ClientError({"Error": {"Code": "InternalError", "Message": "x"}}, "Publish")
        announced.append(change.job_id)

    backend = lambda_sync.build(_settings(aws), scheduler_client=aws["scheduler"]).backend
    service = StreamSync(backend, on_removed=announce)
    gone = make_job("gone")
    records = [
        _record(gone, "INSERT", 1),
        _record(gone.model_copy(update={"version": 2}), "REMOVE", 2),
        _record(make_job("after"), "INSERT", 3),
    ]
    # The schedule is deleted, but the notice failed: Lambda retries from that record.
    assert service.handle({"Records": records}) == {"batchItemFailures": [{"itemIdentifier": "2"}]}
    assert backend.get("alice", "gone") is None and announced == []
    down["sns"] = False
    assert service.handle({"Records": records[1:]}) == {"batchItemFailures": []}
    assert announced == ["gone"]
    assert {s.job_id for s in backend.list()} == {"after"}


class FailFor:
    """Scheduler client that denies calls about one schedule name."""

    def __init__(self, inner: Any, name_part: str) -> None:
        self._inner, self._part, self.on = inner, name_part, True

    def __getattr__(self, op: str) -> Any:
        method = getattr(self._inner, op)

        def call(**kw: Any) -> Any:
            if self.on and self._part in str(kw.get("Name", "")):
                err = {"Code": "AccessDeniedException", "Message": "denied"}
                raise ClientError({"Error": err, "ResponseMetadata": {"HTTPStatusCode": 403}}, op)
            return method(**kw)

        return call


def test_failure_reports_first_failed_record_and_resumes(
    aws: dict[str, Any], make_job: Any
) -> None:
    client = FailFor(aws["scheduler"], "jbad")
    backend = EventBridgeScheduleBackend(
        client,
        group_name=aws["group_name"],
        topic_arn=aws["topic_arn"],
        role_arn=aws["role_arn"],
        dlq_arn=aws["dlq_arn"],
        sleep=lambda s: None,
    )
    service = StreamSync(backend)
    records = [
        _record(make_job("j1"), "INSERT", 1),
        _record(make_job("jbad"), "INSERT", 2),
        _record(make_job("j3"), "INSERT", 3),
    ]
    reply = service.handle({"Records": records})
    assert reply == {"batchItemFailures": [{"itemIdentifier": "2"}]}
    assert backend.get("alice", "j1") is not None
    assert backend.get("alice", "j3") is None  # not applied past the failure
    client.on = False
    assert service.handle({"Records": records[1:]}) == {"batchItemFailures": []}
    assert {s.job_id for s in backend.list()} == {"j1", "jbad", "j3"}


def test_500_changes_with_30_percent_throttling_converge(
    aws: dict[str, Any], make_job: Any, registry: Any, flaky_client: Any
) -> None:
    """Fault (a): Lambda-style redelivery from the first failure, then zero drift."""
    rng = random.Random(42)
    flaky = flaky_client(aws["scheduler"], rate=0.3, seed=3)
    backend = EventBridgeScheduleBackend(
        flaky,
        group_name=aws["group_name"],
        topic_arn=aws["topic_arn"],
        role_arn=aws["role_arn"],
        dlq_arn=aws["dlq_arn"],
        max_attempts=3,  # low, so some records do fail and get redelivered
        sleep=lambda s: None,
        rng=random.Random(1),
    )
    jobs: dict[str, Any] = {}
    records: list[dict[str, Any]] = []
    removed: set[str] = set()
    seq = 0
    while len(records) < 500:
        seq += 1
        job_id = f"j{rng.randrange(120)}"
        if job_id in removed:  # ids are never reused
            continue
        old = jobs.get(job_id)
        if old is None:
            job = make_job(job_id, version=1)
            records.append(_record(job, "INSERT", seq))
            jobs[job_id] = job
        elif rng.random() < 0.1:
            records.append(_record(old, "REMOVE", seq))
            del jobs[job_id]
            removed.add(job_id)
        else:
            job = make_job(
                job_id,
                version=old.version + 1,
                enabled=rng.random() < 0.8,
                schedule={"kind": "rate", "every": rng.randint(1, 90), "unit": "minutes"},
            )
            records.append(_record(job, "MODIFY", seq, old))
            jobs[job_id] = job
    service = StreamSync(backend)
    position, invocations = 0, 0
    while position < len(records):
        batch = records[position : position + 100]
        reply = service.handle({"Records": batch})
        invocations += 1
        failures = reply["batchItemFailures"]
        if failures:
            failed = failures[0]["itemIdentifier"]
            position = next(
                i for i, r in enumerate(records) if r["dynamodb"]["SequenceNumber"] == failed
            )
        else:
            position += len(batch)
        assert invocations < 200
    assert flaky.injected > 100 and service.stats.get("failed", 0) > 0
    clean = EventBridgeScheduleBackend(
        aws["scheduler"],
        group_name=aws["group_name"],
        topic_arn=aws["topic_arn"],
        role_arn=aws["role_arn"],
        dlq_arn=aws["dlq_arn"],
    )
    report = reconcile([j.snapshot() for j in jobs.values()], clean, registry, dry_run=True)
    assert report.errors == []
    assert report.repaired == 0, report.as_dict()
    assert report.unchanged == len(jobs)


def test_records_before_an_unparkable_malformed_one_are_applied(
    aws: dict[str, Any], make_job: Any
) -> None:
    """The failure reply checkpoints the shard before the malformed record: the good
    records ahead of it must be applied then, or Lambda never delivers them again."""

    def sink_down(record: Any, reason: str) -> None:
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "x"}}, "SendMessage")

    backend = lambda_sync.build(_settings(aws), scheduler_client=aws["scheduler"]).backend
    service = StreamSync(backend, dead_letter=sink_down)
    garbage = {"eventName": "INSERT", "eventID": "e2", "dynamodb": {"SequenceNumber": "2"}}
    records = [
        _record(make_job("before"), "INSERT", 1),
        garbage,
        _record(make_job("after"), "INSERT", 3),
    ]
    assert service.handle({"Records": records}) == {"batchItemFailures": [{"itemIdentifier": "2"}]}
    assert backend.get("alice", "before") is not None
    assert backend.get("alice", "after") is None  # comes again, after the failed record
