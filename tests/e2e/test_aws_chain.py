"""The whole AWS chain under moto, through the real Lambda handlers and real event shapes.

API Gateway v2 event -> items handler -> DynamoDB jobs table -> stream records read back
with the dynamodbstreams client -> sync handler -> EventBridge schedule -> the schedule's
exact target `Input` published to its SNS topic (moto does not fire schedules) -> SQS
queue subscribed with a job_type body filter -> plugin consumer handler -> the HTML
checker fetches a local page -> notification at a local apprise `json://` endpoint.
Then the job is updated and deleted through the API and the schedule follows; the
deletion's notice reaches the consumer, which forgets the monitor's runs and state.
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

EVENTS = Path(__file__).resolve().parents[1] / "events"
REGION = "eu-central-1"
ALICE_SUB = "3f5d6e2a-8b1c-4d7e-9f0a-1b2c3d4e5f60"
GROUP = "scheduler-e2e"
ROLE_ARN = "arn:aws:iam::123456789012:role/scheduler-e2e"
PLACEHOLDER = "<aws.scheduler.scheduled-time>"


def api_event(name: str, *, job_id: str | None = None, body: dict[str, Any] | None = None) -> Any:
    """A recorded API Gateway HTTP API v2 event with the job id and body filled in."""
    text = (EVENTS / name).read_text()
    if job_id:
        text = text.replace("JOB_ID", job_id)
    event: dict[str, Any] = json.loads(text)
    if body is not None:
        event["body"] = json.dumps(body)
        event["headers"]["content-length"] = str(len(event["body"]))
    return event


def call_api(handler: Any, event: dict[str, Any]) -> tuple[int, Any]:
    reply = handler(event, None)
    return reply["statusCode"], (json.loads(reply["body"]) if reply.get("body") else None)


class Notifications:
    """What the local apprise `json://` endpoint received."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []

    def handle(self, request: Request) -> Response:
        self.received.append(json.loads(request.get_data(as_text=True)))
        return Response("ok", status=200)


@pytest.fixture
def chain(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """Moto resources as Terraform creates them, and the settings it injects."""
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
        from serverless_scheduler_common.state import DynamoDBStateStore
        from serverless_scheduler_items.dynamodb_repository import jobs_table_definition

        ddb = boto3.client("dynamodb", region_name=REGION)
        sns = boto3.client("sns", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        scheduler = boto3.client("scheduler", region_name=REGION)
        streams = boto3.client("dynamodbstreams", region_name=REGION)

        ddb.create_table(**jobs_table_definition("jobs"))
        pk_sk = {
            "KeySchema": [
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            "AttributeDefinitions": [
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            "BillingMode": "PAY_PER_REQUEST",
        }
        ddb.create_table(TableName="runs", **pk_sk)
        ddb.create_table(
            TableName="idempotency",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        DynamoDBStateStore.create_table(ddb, "html-state")

        topic = sns.create_topic(Name="distribution")["TopicArn"]
        queues: dict[str, str] = {}
        for job_type in ("html_monitor_job", "webhook_job"):
            url = sqs.create_queue(QueueName=job_type.replace("_", "-"))["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]
            sns.subscribe(
                TopicArn=topic,
                Protocol="sqs",
                Endpoint=arn,
                Attributes={
                    "RawMessageDelivery": "true",
                    "FilterPolicyScope": "MessageBody",
                    "FilterPolicy": json.dumps({"job_type": [job_type]}),
                },
            )
            queues[job_type] = url
        sched_dlq = sqs.create_queue(QueueName="scheduler-dlq")["QueueUrl"]
        sched_dlq_arn = sqs.get_queue_attributes(QueueUrl=sched_dlq, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        scheduler.create_schedule_group(Name=GROUP)

        for name, value in {
            "SCHEDULER_AWS_REGION": REGION,
            "SCHEDULER_JOBS_TABLE": "jobs",
            "SCHEDULER_RUNS_TABLE": "runs",
            "SCHEDULER_IDEMPOTENCY_TABLE": "idempotency",
            "SCHEDULER_STATE_TABLE": "html-state",
            "SCHEDULER_TOPIC_ARN": topic,
            "SCHEDULER_SCHEDULE_GROUP": GROUP,
            "SCHEDULER_SCHEDULER_ROLE_ARN": ROLE_ARN,
            "SCHEDULER_SCHEDULER_DLQ_ARN": sched_dlq_arn,
            # The checker and the notifier talk to 127.0.0.1 in this test.
            "SCHEDULER_ALLOW_PRIVATE_NETWORKS": "true",
        }.items():
            monkeypatch.setenv(name, value)

        from serverless_scheduler_common.runtime import lambda_consumer
        from serverless_scheduler_schedulers import lambda_sync

        # Every handler wires itself from the environment on its first (cold) call.
        sys.modules.pop("serverless_scheduler_items.lambda_handler", None)
        items = importlib.import_module("serverless_scheduler_items.lambda_handler")
        monkeypatch.setattr(lambda_sync, "_service", None)
        lambda_consumer.configure(None)
        try:
            yield {
                "items": items.handler,
                "sync": lambda_sync.handler,
                "consumer": lambda_consumer.handler,
                "ddb": ddb,
                "sns": sns,
                "sqs": sqs,
                "scheduler": scheduler,
                "streams": streams,
                "topic": topic,
                "queues": queues,
                "sched_dlq": sched_dlq,
            }
        finally:
            lambda_consumer.configure(None)
            sys.modules.pop("serverless_scheduler_items.lambda_handler", None)


class StreamReader:
    """Reads the jobs table's stream like the Lambda event source mapping does."""

    def __init__(self, ddb: Any, streams: Any) -> None:
        self._streams = streams
        arn = ddb.describe_table(TableName="jobs")["Table"]["LatestStreamArn"]
        self._arn = arn
        shards = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
        self._iterators = {
            shard["ShardId"]: streams.get_shard_iterator(
                StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            for shard in shards
        }

    def next_event(self) -> dict[str, Any]:
        """The Lambda event of the records written since the last call."""
        records: list[dict[str, Any]] = []
        for shard, iterator in list(self._iterators.items()):
            reply = self._streams.get_records(ShardIterator=iterator)
            self._iterators[shard] = reply["NextShardIterator"]
            for record in reply["Records"]:
                record = json.loads(json.dumps(record, default=str))
                record["eventSourceARN"] = self._arn
                records.append(record)
        return {"Records": records}


def sqs_event(sqs: Any, queue_url: str) -> dict[str, Any]:
    """The SQS Lambda event built from what the queue delivers."""
    reply = sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, AttributeNames=["All"], WaitTimeSeconds=0
    )
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m["Attributes"],
                "messageAttributes": {},
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:" + REGION + ":123456789012:q",
                "awsRegion": REGION,
            }
            for m in reply.get("Messages", [])
        ]
    }


def get_schedule(chain: dict[str, Any], owner_id: str, job_id: str) -> dict[str, Any] | None:
    from botocore.exceptions import ClientError

    from serverless_scheduler_schedulers.eventbridge import schedule_name

    try:
        schedule: dict[str, Any] = chain["scheduler"].get_schedule(
            Name=schedule_name(owner_id, job_id), GroupName=GROUP
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ResourceNotFoundException":
            return None
        raise
    schedule.pop("ResponseMetadata", None)
    return schedule


def fire_schedule(chain: dict[str, Any], schedule: dict[str, Any], when: datetime) -> str:
    """Do what EventBridge Scheduler does at `when`: publish the target Input to the target."""
    target = schedule["Target"]
    message = target["Input"].replace(PLACEHOLDER, when.strftime("%Y-%m-%dT%H:%M:%SZ"))
    chain["sns"].publish(TopicArn=target["Arn"], Message=message)
    return message


def consume(chain: dict[str, Any], job_type: str) -> tuple[dict[str, Any], dict[str, Any]]:
    event = sqs_event(chain["sqs"], chain["queues"][job_type])
    return event, chain["consumer"](event, None)


def test_api_to_notification_and_schedule_follows_updates(
    chain: dict[str, Any], httpserver: HTTPServer
) -> None:
    page = {"body": "<html><main><p class='price'>Price: 10 EUR</p></main></html>"}
    httpserver.expect_request("/pricing").respond_with_handler(
        lambda request: Response(page["body"], content_type="text/html")
    )
    inbox = Notifications()
    httpserver.expect_request("/notify", method="POST").respond_with_handler(inbox.handle)
    notify_url = f"json://127.0.0.1:{httpserver.port}/notify"
    reader = StreamReader(chain["ddb"], chain["streams"])

    # 1. API Gateway event -> items handler -> DynamoDB.
    create = json.loads(api_event("apigw_create_job.json")["body"])
    create.update(
        url=httpserver.url_for("/pricing"),
        css_selector="main .price",
        headers={},
        notify=[notify_url],
        schedule={"kind": "rate", "every": 5, "unit": "minutes"},
    )
    status, job = call_api(chain["items"], api_event("apigw_create_job.json", body=create))
    assert status == 201, job
    job_id, owner = job["job_id"], job["owner_id"]
    assert owner == ALICE_SUB

    # 2. Stream records read back -> sync handler -> EventBridge schedule.
    assert get_schedule(chain, owner, job_id) is None
    event = reader.next_event()
    assert [r["eventName"] for r in event["Records"]] == ["INSERT"]
    assert chain["sync"](event, None) == {"batchItemFailures": []}
    schedule = get_schedule(chain, owner, job_id)
    assert schedule is not None
    assert schedule["ScheduleExpression"] == "rate(5 minutes)"
    assert schedule["State"] == "ENABLED"
    assert schedule["Target"]["Arn"] == chain["topic"]
    template = json.loads(schedule["Target"]["Input"])
    assert template["job_type"] == "html_monitor_job"
    assert template["scheduled_time"] == PLACEHOLDER
    assert template["job"]["notify"] == [notify_url]  # the real secret, not the mask

    # 3. Fire: the exact Input goes to SNS; only the html_monitor_job queue gets it.
    first = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    fire_schedule(chain, schedule, first)
    assert sqs_event(chain["sqs"], chain["queues"]["webhook_job"])["Records"] == []
    event, reply = consume(chain, "html_monitor_job")
    assert len(event["Records"]) == 1
    assert reply == {"batchItemFailures": []}
    assert inbox.received == []  # the first check records a baseline only

    # 4. The page changes; the next fire reports it and notifies once.
    page["body"] = "<html><main><p class='price'>Price: 12 EUR</p></main></html>"
    second = datetime(2026, 3, 2, 9, 5, tzinfo=UTC)
    fire_schedule(chain, schedule, second)
    event, reply = consume(chain, "html_monitor_job")
    assert reply == {"batchItemFailures": []}
    assert len(inbox.received) == 1
    note = inbox.received[0]
    assert "Pricing page" in note["title"]
    assert "-Price: 10 EUR" in note["message"] and "+Price: 12 EUR" in note["message"]

    # An at-least-once duplicate of the same fire runs nothing and notifies nobody.
    chain["sqs"].send_message(
        QueueUrl=chain["queues"]["html_monitor_job"], MessageBody=event["Records"][0]["body"]
    )
    _, reply = consume(chain, "html_monitor_job")
    assert reply == {"batchItemFailures": []}
    assert len(inbox.received) == 1

    # The runs are visible through the API, newest first.
    status, runs = call_api(chain["items"], api_event("apigw_list_runs.json", job_id=job_id))
    assert status == 200, runs
    assert [r["status"] for r in runs["items"]] == ["changed", "ok"]
    assert runs["items"][1]["summary"] == "baseline recorded"
    assert "+Price: 12 EUR" in runs["items"][0]["detail"]
    assert runs["items"][0]["scheduled_time"].startswith("2026-03-02T09:05:00")

    # 5. Update through the API: the schedule follows (expression, state, version).
    update = json.loads(api_event("apigw_update_job.json")["body"])
    update.update(
        url=httpserver.url_for("/pricing"),
        css_selector="main .price",
        headers={},
        notify=["********"],
        enabled=False,
        schedule={"kind": "cron", "expression": "0 9 * * 1-5", "timezone": "Europe/Warsaw"},
    )
    status, updated = call_api(
        chain["items"], api_event("apigw_update_job.json", job_id=job_id, body=update)
    )
    assert status == 200, updated
    event = reader.next_event()
    assert [r["eventName"] for r in event["Records"]] == ["MODIFY"]
    assert chain["sync"](event, None) == {"batchItemFailures": []}
    schedule = get_schedule(chain, owner, job_id)
    assert schedule is not None
    assert schedule["ScheduleExpression"] == "cron(0 9 ? * MON-FRI *)"
    assert schedule["ScheduleExpressionTimezone"] == "Europe/Warsaw"
    assert schedule["State"] == "DISABLED"
    template = json.loads(schedule["Target"]["Input"])
    assert template["job"]["version"] == updated["version"] == 2
    assert template["job"]["notify"] == [notify_url]  # the masked secret was kept

    # Replaying the same stream batch (at-least-once) changes nothing, not even the date.
    assert chain["sync"](event, None) == {"batchItemFailures": []}
    assert get_schedule(chain, owner, job_id) == schedule

    # 6. Delete through the API: the schedule goes too, and the removal notice reaches
    # the html_monitor_job consumer only, which forgets the runs, page text and changes.
    from serverless_scheduler_common.state import DynamoDBStateStore

    state, key = DynamoDBStateStore(chain["ddb"], "html-state"), f"{owner}/{job_id}"
    assert state.get("html_checker", key) is not None
    assert len(state.history("html_checker", key)) == 1
    status, _ = call_api(chain["items"], api_event("apigw_delete_job.json", job_id=job_id))
    assert status == 204
    event = reader.next_event()
    assert [r["eventName"] for r in event["Records"]] == ["REMOVE"]
    assert chain["sync"](event, None) == {"batchItemFailures": []}
    assert get_schedule(chain, owner, job_id) is None
    assert chain["sqs"].receive_message(QueueUrl=chain["sched_dlq"]).get("Messages") is None
    assert sqs_event(chain["sqs"], chain["queues"]["webhook_job"])["Records"] == []
    event, reply = consume(chain, "html_monitor_job")
    assert [json.loads(r["body"])["event"] for r in event["Records"]] == ["job_removed"]
    assert reply == {"batchItemFailures": []}
    assert state.get("html_checker", key) is None
    assert state.history("html_checker", key) == []
    assert len(inbox.received) == 1  # forgetting notifies nobody
    from serverless_scheduler_common.runtime.dynamodb import DynamoDBRunRepository

    assert DynamoDBRunRepository(chain["ddb"], "runs").list(owner, job_id).items == []
