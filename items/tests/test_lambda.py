"""The items Lambda handler fed real API Gateway HTTP API v2 events, over moto DynamoDB."""

from __future__ import annotations

import importlib
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

EVENTS = Path(__file__).resolve().parents[2] / "tests" / "events"
ALICE_SUB = "3f5d6e2a-8b1c-4d7e-9f0a-1b2c3d4e5f60"


def load_event(name: str, job_id: str | None = None, sub: str | None = None) -> dict[str, Any]:
    """An event from tests/events/, with the job id (and optionally the caller) filled in."""
    text = (EVENTS / name).read_text()
    if job_id:
        text = text.replace("JOB_ID", job_id)
    event: dict[str, Any] = json.loads(text)
    if sub:
        event["requestContext"]["authorizer"]["jwt"]["claims"]["sub"] = sub
    return event


@pytest.fixture
def lambda_env(aws: None, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Moto table + topic (with an SQS subscriber), settings as Terraform injects them."""
    import boto3

    from serverless_scheduler_items.dynamodb_repository import jobs_table_definition

    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    dynamodb.create_table(**jobs_table_definition("jobs-dev"))
    dynamodb.create_table(  # the runs table as Terraform defines it
        TableName="runs-dev",
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    sns = boto3.client("sns", region_name="us-east-1")
    sqs = boto3.client("sqs", region_name="us-east-1")
    topic = sns.create_topic(Name="distribution")["TopicArn"]
    queue = sqs.create_queue(QueueName="html-checker")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(
        TopicArn=topic,
        Protocol="sqs",
        Endpoint=queue_arn,
        Attributes={"RawMessageDelivery": "true"},
    )
    monkeypatch.setenv("SCHEDULER_JOBS_TABLE", "jobs-dev")
    monkeypatch.setenv("SCHEDULER_TOPIC_ARN", topic)
    monkeypatch.setenv("SCHEDULER_RUNS_TABLE", "runs-dev")
    monkeypatch.setenv("SCHEDULER_AWS_REGION", "us-east-1")
    sys.modules.pop("serverless_scheduler_items.lambda_handler", None)
    module = importlib.import_module("serverless_scheduler_items.lambda_handler")
    yield module.handler, sqs, queue
    sys.modules.pop("serverless_scheduler_items.lambda_handler", None)


def invoke(handler: Any, event: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
    reply = handler(event, None)
    body = json.loads(reply["body"]) if reply.get("body") else None
    return reply["statusCode"], body, reply.get("headers", {})


def test_create_list_update_run_delete_through_the_handler(lambda_env: Any) -> None:
    handler, sqs, queue = lambda_env

    status, job, headers = invoke(handler, load_event("apigw_create_job.json"))
    assert status == 201, job
    assert job["owner_id"] == ALICE_SUB
    assert job["headers"] == {"Cookie": "********"}
    assert headers["location"] == f"/api/v1/jobs/{job['job_id']}"
    job_id = job["job_id"]

    status, page, _ = invoke(handler, load_event("apigw_list_jobs.json"))
    assert status == 200
    assert [j["job_id"] for j in page["items"]] == [job_id]
    assert page["next_cursor"] is None

    status, updated, _ = invoke(handler, load_event("apigw_update_job.json", job_id))
    assert status == 200, updated
    assert updated["enabled"] is False
    assert updated["schedule"] == {
        "kind": "rate",
        "every": 7,
        "unit": "days",
        "start_at": None,
        "end_at": None,
        "jitter_s": 0,
    }
    assert updated["version"] == 2
    assert updated["created_at"] == job["created_at"]

    status, fired, _ = invoke(handler, load_event("apigw_run_job.json", job_id))
    assert status == 202
    (message,) = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=0)["Messages"]
    body = json.loads(message["Body"])
    assert body["fire_id"] == fired["fire_id"]
    assert body["job_type"] == "html_monitor_job" and body["manual"] is True
    # The masked secrets sent back on update kept the real ones.
    assert body["job"]["headers"] == {"Cookie": "session=abc123"}
    assert body["job"]["notify"] == ["mailto://alerts:pw@example.com"]

    status, _, _ = invoke(handler, load_event("apigw_get_job.json", job_id, sub="someone-else"))
    assert status == 404

    status, _, _ = invoke(handler, load_event("apigw_delete_job.json", job_id))
    assert status == 204
    status, _, _ = invoke(handler, load_event("apigw_get_job.json", job_id))
    assert status == 404
    status, page, _ = invoke(handler, load_event("apigw_list_jobs.json"))
    assert page["items"] == []


def test_a_request_without_jwt_claims_is_401(lambda_env: Any) -> None:
    handler, _, _ = lambda_env
    status, body, _ = invoke(handler, load_event("apigw_list_jobs_no_claims.json"))
    assert status == 401
    assert body == {"detail": "missing or invalid credentials"}


@pytest.mark.parametrize(
    "event",
    [
        {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}},
        {},
        ["not", "a", "mapping"],
    ],
)
def test_an_event_that_is_not_an_api_request_is_refused_with_400(
    lambda_env: Any, event: Any, caplog: pytest.LogCaptureFixture
) -> None:
    handler, _, _ = lambda_env
    with caplog.at_level("WARNING"):
        status, body, _ = invoke(handler, event)
    assert status == 400
    assert body == {"detail": "not an API Gateway HTTP request"}
    assert "not an API Gateway request" in caplog.text
    # The handler still serves real requests afterwards.
    assert invoke(handler, load_event("apigw_list_jobs.json"))[0] == 200


def test_run_history_is_read_from_the_runs_table(lambda_env: Any) -> None:
    import boto3

    from serverless_scheduler_common import Run
    from serverless_scheduler_common.runtime.dynamodb import DynamoDBRunRepository

    handler, _, _ = lambda_env
    _, job, _ = invoke(handler, load_event("apigw_create_job.json"))
    runs = DynamoDBRunRepository(boto3.client("dynamodb", region_name="us-east-1"), "runs-dev")
    start = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    for i in range(3):
        runs.record(
            ALICE_SUB,
            Run(
                job_id=job["job_id"],
                fire_id=f"fire-{i}",
                scheduled_time=start + timedelta(days=i),
                started_at=start + timedelta(days=i),
                status="changed" if i == 2 else "ok",
                summary=f"run {i}",
            ),
        )
    status, page, _ = invoke(handler, load_event("apigw_list_runs.json", job["job_id"]))
    assert status == 200, page
    assert [r["summary"] for r in page["items"]] == ["run 2", "run 1", "run 0"]
    assert page["items"][0]["status"] == "changed"
    status, _, _ = invoke(
        handler, load_event("apigw_list_runs.json", job["job_id"], sub="someone-else")
    )
    assert status == 404


def _changes_event(job_id: str, sub: str | None = None) -> dict[str, Any]:
    """The runs event, asking for the job's changes instead."""
    event = load_event("apigw_list_runs.json", job_id, sub=sub)
    path = event["rawPath"].replace("/runs", "/changes")
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["pathParameters"]["proxy"] = path.removeprefix("/api/")
    return event


def _reload_handler() -> Any:
    sys.modules.pop("serverless_scheduler_items.lambda_handler", None)
    return importlib.import_module("serverless_scheduler_items.lambda_handler").handler


def test_change_history_is_read_from_the_state_table(
    lambda_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    from serverless_scheduler_common.state import DynamoDBStateStore

    handler, _, _ = lambda_env
    _, job, _ = invoke(handler, load_event("apigw_create_job.json"))
    status, body, _ = invoke(handler, _changes_event(job["job_id"]))
    assert status == 503, body  # no SCHEDULER_STATE_TABLE: a configuration problem

    client = boto3.client("dynamodb", region_name="us-east-1")
    DynamoDBStateStore.create_table(client, "state-dev")
    DynamoDBStateStore(client, "state-dev").append_history(
        "html_checker",
        f"{ALICE_SUB}/{job['job_id']}",
        {
            "at": "2026-01-05T09:00:00+00:00",
            "fire_id": "fire-1",
            "hash": "h",
            "added": 1,
            "removed": 0,
            "diff": "@@ -1,0 +1 @@\n+Team plan\n",
        },
        keep=50,
    )
    monkeypatch.setenv("SCHEDULER_STATE_TABLE", "state-dev")
    handler = _reload_handler()
    status, page, _ = invoke(handler, _changes_event(job["job_id"]))
    assert status == 200, page
    assert page["supported"] is True
    assert [(c["summary"], c["diff"]) for c in page["items"]] == [
        ("changed (+1/-0 lines)", "@@ -1,0 +1 @@\n+Team plan\n")
    ]
    status, _, _ = invoke(handler, _changes_event(job["job_id"], sub="someone-else"))
    assert status == 404
