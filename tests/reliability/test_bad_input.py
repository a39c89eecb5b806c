"""Bad input: fuzzing the live local API, and malformed records in the AWS pipes.

* schemathesis over the OpenAPI document of a running `serve` process: no 5xx. Every
  generated URL is pointed at 127.0.0.1 (refused by the SSRF guard, which is on), so
  nothing leaves the machine.
* A DynamoDB stream batch with malformed records between good ones: the good ones become
  schedules, the bad ones go to the dead-letter queue, the batch does not fail.
* SQS bodies that are not fires, or fires whose job no longer validates, end in the
  plugin's dead-letter queue while the good fires of the same batches run exactly once.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from serverless_scheduler_common import JobFired, Settings

pytestmark = pytest.mark.reliability

EVENTS = Path(__file__).resolve().parents[1] / "events"
REGION = "eu-west-1"


def _point_at_loopback(value: Any, target: str) -> Any:
    """Replace every `url` in a generated body with a loopback URL and drop notify lists."""
    if isinstance(value, dict):
        out = {k: _point_at_loopback(v, target) for k, v in value.items()}
        if isinstance(out.get("url"), str):
            out["url"] = target
        if isinstance(out.get("notify"), list):
            out["notify"] = []
        return out
    if isinstance(value, list):
        return [_point_at_loopback(v, target) for v in value]
    return value


def test_schemathesis_over_the_live_api_finds_no_5xx(
    serve: Callable[..., Any], ls: ModuleType
) -> None:
    server = serve(env={"SCHEDULER_LOG_LEVEL": "WARNING"}).start()
    token = server.token
    with server.client() as api:
        reply = api.post("/jobs", json=ls.monitor_body("https://example.com/", name="seed"))
        assert reply.status_code == 201
    schema = schemathesis.openapi.from_url(f"{server.base}/api/v1/openapi.json")
    target = f"http://127.0.0.1:{server.port}/blocked"
    operations = [op.ok() for op in schema.get_all_operations()]
    assert len(operations) >= 9
    calls = {"n": 0}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=25,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def check(case: Any) -> None:
            if case.body is not None and not isinstance(case.body, str | bytes):
                case.body = _point_at_loopback(case.body, target)
            calls["n"] += 1
            case.call_and_validate(
                base_url=server.base,
                headers={"Authorization": f"Bearer {token}"},
                checks=[not_a_server_error],
            )

        check()
    assert calls["n"] >= 9 * 10
    assert httpx.get(f"{server.base}/api/v1/health").status_code == 200
    assert server.interrupt() in (0, 130), server.logs()
    assert "Exception in ASGI application" not in server.stderr_path().read_text()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    import boto3
    from moto import mock_aws

    for name, value in {
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield {
            "sqs": boto3.client("sqs", region_name=REGION),
            "ddb": boto3.client("dynamodb", region_name=REGION),
            "scheduler": boto3.client("scheduler", region_name=REGION),
            "sns": boto3.client("sns", region_name=REGION),
        }


def _queue_with_dlq(sqs: Any, name: str, max_receive: int) -> tuple[str, str]:
    dlq = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    queue = sqs.create_queue(
        QueueName=name,
        Attributes={
            "VisibilityTimeout": "0",
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive)}
            ),
        },
    )["QueueUrl"]
    return queue, dlq


def _consumer_tables(ddb: Any) -> None:
    """The runs and idempotency tables a plugin consumer's runtime uses."""
    for table, keys in {"runs": ["pk", "sk"], "idempotency": ["pk"]}.items():
        ddb.create_table(
            TableName=table,
            KeySchema=[
                {"AttributeName": k, "KeyType": t}
                for k, t in zip(keys, ["HASH", "RANGE"], strict=False)
            ],
            AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k in keys],
            BillingMode="PAY_PER_REQUEST",
        )


def _drain(sqs: Any, url: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            return messages
        for message in got:
            messages.append(json.loads(message["Body"]) if message["Body"][:1] == "{" else {})
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def test_malformed_stream_records_are_dead_lettered_without_blocking(
    aws: dict[str, Any],
) -> None:
    from serverless_scheduler_schedulers import lambda_sync
    from serverless_scheduler_schedulers.eventbridge import schedule_name

    sqs, scheduler = aws["sqs"], aws["scheduler"]
    scheduler.create_schedule_group(Name="grp")
    topic = aws["sns"].create_topic(Name="distribution")["TopicArn"]
    dlq = sqs.create_queue(QueueName="sync-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    service = lambda_sync.build(
        Settings(
            aws_region=REGION,
            jobs_table="jobs",
            schedule_group="grp",
            topic_arn=topic,
            scheduler_role_arn="arn:aws:iam::123456789012:role/s",
            scheduler_dlq_arn=dlq_arn,
            dead_letter_queue_url=dlq,
        ),
        scheduler_client=scheduler,
        sqs_client=sqs,
    )
    good = json.loads((EVENTS / "dynamodb_stream_batch.json").read_text())["Records"][0]
    other = copy.deepcopy(good)
    other["dynamodb"]["Keys"]["job_id"]["S"] = "01jq7zexample0000000000001"
    other["dynamodb"]["NewImage"]["job_id"]["S"] = "01jq7zexample0000000000001"
    other["dynamodb"]["SequenceNumber"] = "100000000000000000009"
    bad = json.loads((EVENTS / "dynamodb_stream_malformed.json").read_text())["Records"]
    garbage = {"eventName": "INSERT", "dynamodb": "not a map"}
    event = {"Records": [good, *bad, garbage, other]}

    assert service.handle(event) == {"batchItemFailures": []}
    for record in (good, other):
        keys = record["dynamodb"]["Keys"]
        got = scheduler.get_schedule(
            Name=schedule_name(keys["owner_id"]["S"], keys["job_id"]["S"]), GroupName="grp"
        )
        assert got["Target"]["Arn"] == topic
    letters = _drain(sqs, dlq)
    assert len(letters) == len(bad) + 1
    assert all(letter["reason"] for letter in letters)


def test_bad_sqs_bodies_reach_the_dlq_and_good_fires_run_once(aws: dict[str, Any]) -> None:
    from serverless_scheduler_common.runtime import lambda_consumer
    from serverless_scheduler_common.runtime.dynamodb import DynamoDBRunRepository
    from serverless_scheduler_common.runtime.sqs import SqsDeadLetterStore

    sqs, ddb = aws["sqs"], aws["ddb"]
    queue, dlq = _queue_with_dlq(sqs, "example", max_receive=2)
    _consumer_tables(ddb)
    settings_ = Settings(
        aws_region=REGION,
        runs_table="runs",
        idempotency_table="idempotency",
        max_attempts=2,
    )
    runtime = lambda_consumer.build_runtime(settings_)
    letters = SqsDeadLetterStore(sqs, dlq)

    def fired(job_id: str, **job: Any) -> JobFired:
        snapshot = {
            "job_id": job_id,
            "owner_id": "alice",
            "job_type": "example_job",
            "name": job_id,
            "schedule": {"kind": "rate", "every": 5, "unit": "minutes"},
            "message": "hi",
            **job,
        }
        return JobFired(
            job_type="example_job",
            job_id=job_id,
            owner_id="alice",
            scheduled_time=datetime(2026, 3, 1, 12, 0, tzinfo=UTC),
            job=snapshot,
        )

    good = [fired(f"good{i}") for i in range(4)]
    bodies = [
        good[0].model_dump_json(),
        "not json at all",
        '{"job_type": 1}',
        good[1].model_dump_json(),
        fired("invalid", schedule={"kind": "rate", "every": 0}).model_dump_json(),
        json.dumps({"Type": "Notification", "Message": "{broken"}),
        good[2].model_dump_json(),
        good[3].model_dump_json(),
        good[0].model_dump_json(),  # an at-least-once duplicate
    ]
    for body in bodies:
        sqs.send_message(QueueUrl=queue, MessageBody=body)

    # What the Lambda event source mapping does: deliver batches, delete what succeeded.
    for _ in range(10):
        got = sqs.receive_message(
            QueueUrl=queue, MaxNumberOfMessages=10, AttributeNames=["All"]
        ).get("Messages", [])
        if not got:
            break
        event = {
            "Records": [
                {
                    "messageId": m["MessageId"],
                    "receiptHandle": m["ReceiptHandle"],
                    "body": m["Body"],
                    "attributes": m["Attributes"],
                    "eventSource": "aws:sqs",
                }
                for m in got
            ]
        }
        reply = lambda_consumer.handle_event(event, runtime, letters)
        failed = {f["itemIdentifier"] for f in reply["batchItemFailures"]}
        # Only unparseable bodies are reported back for redelivery.
        assert {m["Body"] for m in got if m["MessageId"] in failed} <= {
            bodies[1],
            bodies[2],
            bodies[5],
        }
        for m in got:
            if m["MessageId"] not in failed:
                sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
    else:
        raise AssertionError("the queue never drained")

    # `dlq list --aws` shows all four: the unreadable bodies under their message ids.
    listed = SqsDeadLetterStore(sqs, dlq, visibility_s=0).list()
    assert sorted(letter.fire_id.startswith("message:") for letter in listed) == [
        False,
        True,
        True,
        True,
    ]
    dead = _drain(sqs, dlq)
    assert len(dead) == 4  # three unparseable bodies and the fire that cannot validate
    runs = DynamoDBRunRepository(ddb, "runs")
    for f in good:
        page = runs.list("alice", f.job_id)
        assert [r.status for r in page.items] == ["ok"], f.job_id
    assert [r.status for r in runs.list("alice", "invalid").items] == ["error"]


@pytest.mark.parametrize(("lock_ttl_s", "status"), [(900, "skipped"), (120, "ok")])
def test_a_fire_whose_invocation_timed_out_runs_when_sqs_delivers_it_again(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch, lock_ttl_s: int, status: str
) -> None:
    """A consumer invocation that times out (60 s function) leaves the job's in-progress
    marker behind; SQS delivers the message again after the visibility timeout (6 x 60 s).
    With the settings' default 900 s marker the fire then met its own marker and was
    recorded as `skipped`, and never ran; with the marker Terraform sets (2 x the
    timeout, tests/terraform) it has expired and the fire runs."""
    from types import SimpleNamespace

    from serverless_scheduler_common.runtime import dynamodb as ddb_adapters
    from serverless_scheduler_common.runtime import lambda_consumer
    from serverless_scheduler_common.runtime.core import job_key
    from serverless_scheduler_common.runtime.dynamodb import DynamoDBRunRepository

    now = [1_767_261_600.0]
    monkeypatch.setattr(ddb_adapters, "time", SimpleNamespace(time=lambda: now[0]))
    ddb = aws["ddb"]
    _consumer_tables(ddb)
    settings_ = Settings(
        aws_region=REGION,
        runs_table="runs",
        idempotency_table="idempotency",
        run_lock_ttl_s=lock_ttl_s,
    )
    runtime = lambda_consumer.build_runtime(settings_)
    fired = JobFired(
        job_type="example_job",
        job_id="slow",
        owner_id="alice",
        scheduled_time=datetime(2026, 3, 1, 12, 0, tzinfo=UTC),
        job={
            "job_id": "slow",
            "owner_id": "alice",
            "job_type": "example_job",
            "name": "slow",
            "schedule": {"kind": "rate", "every": 5, "unit": "minutes"},
            "message": "hi",
        },
    )
    # The first delivery took the marker, then Lambda stopped it at its timeout.
    assert runtime.ledger.acquire(job_key("alice", "slow"), fired.fire_id, ttl_s=lock_ttl_s)
    now[0] += 6 * 60  # the queue's visibility timeout: SQS delivers the message again
    record = {
        "messageId": "m1",
        "body": fired.model_dump_json(),
        "attributes": {"ApproximateReceiveCount": "2"},
        "eventSource": "aws:sqs",
    }
    assert lambda_consumer.handle_event({"Records": [record]}, runtime) == {"batchItemFailures": []}
    runs = DynamoDBRunRepository(ddb, "runs").list("alice", "slow").items
    assert [r.status for r in runs] == [status]
