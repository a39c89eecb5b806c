"""The whole AWS fan-out under moto: SNS topic -> filtered SQS queues -> consumer Lambda.

Two plugins' queues subscribe with body filter policies on job_type; each fire reaches
only its queue; the real Lambda handler processes SQS events built from received
messages; a failing record is reported in batchItemFailures and lands in the DLQ after
the retry cap; duplicates run once; runs are recorded in DynamoDB.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

moto = pytest.importorskip("moto")
import boto3  # noqa: E402

from serverless_scheduler_common import Settings, hookimpl  # noqa: E402
from serverless_scheduler_common.events import JobRemoved  # noqa: E402
from serverless_scheduler_common.plugins import build_registry, get_plugin_manager  # noqa: E402
from serverless_scheduler_common.runtime import lambda_consumer  # noqa: E402
from serverless_scheduler_common.runtime.core import ConsumerRuntime  # noqa: E402
from serverless_scheduler_common.runtime.dispatcher import purge, redrive  # noqa: E402
from serverless_scheduler_common.runtime.dynamodb import (  # noqa: E402
    DynamoDBFireLedger,
    DynamoDBJobControl,
    DynamoDBRunRepository,
)
from serverless_scheduler_common.runtime.ports import FireLookup  # noqa: E402
from serverless_scheduler_common.runtime.sns import SnsPublisher  # noqa: E402
from serverless_scheduler_common.runtime.sqs import SqsDeadLetterStore  # noqa: E402

MAX_ATTEMPTS = 3
REGION = "eu-west-1"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_ACCOUNT_ID_ENDPOINT_MODE", "disabled")
    with moto.mock_aws():
        sns = boto3.client("sns", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        ddb = boto3.client("dynamodb", region_name=REGION)
        topic = sns.create_topic(Name="distribution")["TopicArn"]
        queues: dict[str, dict[str, str]] = {}
        for job_type in ("alpha_job", "beta_job"):
            dlq_url = sqs.create_queue(QueueName=f"{job_type}-dlq")["QueueUrl"]
            dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
                "Attributes"
            ]["QueueArn"]
            url = sqs.create_queue(
                QueueName=job_type,
                Attributes={
                    "VisibilityTimeout": "0",
                    "RedrivePolicy": json.dumps(
                        {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(MAX_ATTEMPTS)}
                    ),
                },
            )["QueueUrl"]
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
            queues[job_type] = {"url": url, "arn": arn, "dlq": dlq_url}
        ddb.create_table(
            TableName="runs",
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
        ddb.create_table(
            TableName="idempotency",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
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
        yield {"sns": sns, "sqs": sqs, "ddb": ddb, "topic": topic, "queues": queues}
    lambda_consumer.configure(None)


def _runtime(aws: dict[str, Any], plugins: list[object]) -> ConsumerRuntime:
    settings = Settings(max_attempts=MAX_ATTEMPTS)
    pm = get_plugin_manager(settings=settings, plugins=plugins, load_entrypoints=False)
    return ConsumerRuntime(
        settings=settings,
        pm=pm,
        registry=build_registry(pm),
        runs=DynamoDBRunRepository(aws["ddb"], "runs", retention=5),
        ledger=DynamoDBFireLedger(aws["ddb"], "idempotency"),
        job_control=DynamoDBJobControl(aws["ddb"], "jobs"),
    )


def _receive_event(aws: dict[str, Any], job_type: str) -> dict[str, Any]:
    """An SQS Lambda event built from what the queue delivers, as the event source mapping does."""
    queue = aws["queues"][job_type]
    reply = aws["sqs"].receive_message(
        QueueUrl=queue["url"], MaxNumberOfMessages=10, AttributeNames=["All"]
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
                "eventSourceARN": queue["arn"],
                "awsRegion": REGION,
            }
            for m in reply.get("Messages", [])
        ]
    }


def _deliver(
    aws: dict[str, Any], job_type: str, event: dict[str, Any] | None = None
) -> tuple[int, list[str]]:
    """One poll of the queue through the real handler; delete what succeeded."""
    event = event or _receive_event(aws, job_type)
    reply = lambda_consumer.handler(event, None)
    failed = {f["itemIdentifier"] for f in reply["batchItemFailures"]}
    for record in event["Records"]:
        if record["messageId"] not in failed:
            aws["sqs"].delete_message(
                QueueUrl=aws["queues"][job_type]["url"], ReceiptHandle=record["receiptHandle"]
            )
    return len(event["Records"]), sorted(failed)


def test_fan_out_routing_retries_dlq_and_dedupe(aws: dict[str, Any], rig_factory: Any) -> None:
    rig = rig_factory()  # reuse the test plugins (AlphaPlugin / BetaPlugin)
    lambda_consumer.configure(_runtime(aws, [rig.alpha, rig.beta]))
    from .conftest import BetaJob, fire_of, make_job  # type: ignore[import-not-found]

    ok_job = make_job("fine")
    bad_job = make_job("broken", fail=True)
    beta = BetaJob(name="b", owner_id="bob", schedule={"kind": "rate", "every": 1, "unit": "hours"})
    ok_fire, bad_fire, beta_fire = fire_of(ok_job), fire_of(bad_job), fire_of(beta)

    publisher = SnsPublisher(aws["sns"], aws["topic"])
    publisher.publish_many([ok_fire, bad_fire])
    publisher.publish(beta_fire)
    publisher.publish(ok_fire)  # at-least-once: a duplicate delivery

    # each fire reached only its plugin's queue
    alpha_event = _receive_event(aws, "alpha_job")
    bodies = sorted(json.loads(r["body"])["fire_id"] for r in alpha_event["Records"])
    assert bodies == sorted([ok_fire.fire_id, bad_fire.fire_id, ok_fire.fire_id])
    # first delivery (the messages just received): the failing record alone is reported
    count, failed = _deliver(aws, "alpha_job", alpha_event)
    assert count == 3
    assert failed == [
        r["messageId"] for r in alpha_event["Records"] if bad_fire.fire_id in r["body"]
    ]
    assert rig.alpha.calls.count(ok_fire.fire_id) == 1  # the duplicate did not run again

    count, failed = _deliver(aws, "beta_job")
    assert (count, failed) == (1, [])
    assert rig.beta.calls == [beta_fire.fire_id]

    # redeliveries until the cap (visibility timeout 0: visible again right away)
    seen_failures = 1
    for _ in range(MAX_ATTEMPTS + 2):
        count, failed = _deliver(aws, "alpha_job")
        if count == 0:
            break
        seen_failures += len(failed)
    assert seen_failures == MAX_ATTEMPTS
    assert rig.alpha.calls.count(ok_fire.fire_id) == 1  # duplicate ran once
    assert rig.alpha.calls.count(bad_fire.fire_id) == MAX_ATTEMPTS

    # past the cap SQS moved the failing fire to the DLQ
    dlq = SqsDeadLetterStore(aws["sqs"], aws["queues"]["alpha_job"]["dlq"], visibility_s=0)
    letters = dlq.list()
    assert [letter.fire_id for letter in letters] == [bad_fire.fire_id]

    # run history in DynamoDB: one changed run; three error runs, newest first
    runs = DynamoDBRunRepository(aws["ddb"], "runs")
    assert [r.status for r in runs.list("alice", ok_job.job_id).items] == ["changed"]
    bad_runs = runs.list("alice", bad_job.job_id).items
    assert [r.summary.split(":")[0] for r in bad_runs] == [
        "attempt 3 failed",
        "attempt 2 failed",
        "attempt 1 failed",
    ]

    # dlq redrive republishes through SNS; fixed consumer now succeeds
    rig.alpha.healed = True
    assert redrive(dlq, publisher, fire_ids=[bad_fire.fire_id]) == [bad_fire.fire_id]
    assert _receive_event(aws, "beta_job")["Records"] == []
    assert _deliver(aws, "alpha_job") == (1, [])
    assert runs.list("alice", bad_job.job_id).items[0].status == "changed"
    assert SqsDeadLetterStore(aws["sqs"], aws["queues"]["alpha_job"]["dlq"]).list() == []


def test_sns_attribute_and_direct_sns_event(aws: dict[str, Any], rig_factory: Any) -> None:
    rig = rig_factory()
    runtime = _runtime(aws, [rig.alpha, rig.beta])
    from .conftest import fire_of, make_job  # type: ignore[import-not-found]

    fired = fire_of(make_job("direct"))
    event = {
        "Records": [
            {
                "EventSource": "aws:sns",
                "Sns": {
                    "Message": fired.model_dump_json(),
                    "MessageAttributes": {"job_type": {"Type": "String", "Value": "alpha_job"}},
                },
            }
        ]
    }
    assert lambda_consumer.handle_event(event, runtime) == {"batchItemFailures": []}
    assert lambda_consumer.handle_event(event, runtime) == {"batchItemFailures": []}
    assert rig.alpha.calls == [fired.fire_id]
    broken = fire_of(make_job("broken", fail=True))
    event["Records"][0]["Sns"]["Message"] = broken.model_dump_json()
    with pytest.raises(RuntimeError, match="SNS record"):
        lambda_consumer.handle_event(event, runtime)


def test_invalid_snapshot_goes_straight_to_the_dlq(aws: dict[str, Any], rig_factory: Any) -> None:
    from .conftest import fire_of, make_job  # type: ignore[import-not-found]

    rig = rig_factory()
    dlq_url = aws["queues"]["alpha_job"]["dlq"]
    lambda_consumer.configure(
        _runtime(aws, [rig.alpha]), SqsDeadLetterStore(aws["sqs"], dlq_url, visibility_s=0)
    )
    good = fire_of(make_job("x"))
    bad = good.model_copy(update={"job": {**good.job, "schedule": {"kind": "weekly"}}})
    event = {"Records": [{"messageId": "m1", "body": bad.model_dump_json(), "attributes": {}}]}
    assert lambda_consumer.handler(event, None) == {"batchItemFailures": []}
    [letter] = SqsDeadLetterStore(aws["sqs"], dlq_url, visibility_s=0).list()
    assert letter.fire_id == bad.fire_id
    assert rig.alpha.calls == []


def test_purge_drops_named_letters_from_the_sqs_dlq(aws: dict[str, Any]) -> None:
    from .conftest import fire_of, make_job  # type: ignore[import-not-found]

    dlq_url = aws["queues"]["alpha_job"]["dlq"]
    fires = [fire_of(make_job(f"p{i}")) for i in range(3)]
    for fired in fires:
        aws["sqs"].send_message(QueueUrl=dlq_url, MessageBody=fired.model_dump_json())
    store = SqsDeadLetterStore(aws["sqs"], dlq_url, visibility_s=0)
    assert purge(store, fire_ids=[fires[1].fire_id]) == [fires[1].fire_id]
    left = SqsDeadLetterStore(aws["sqs"], dlq_url, visibility_s=0).list()
    assert sorted(letter.fire_id for letter in left) == sorted([fires[0].fire_id, fires[2].fire_id])
    assert sorted(purge(store)) == sorted([fires[0].fire_id, fires[2].fire_id])
    assert SqsDeadLetterStore(aws["sqs"], dlq_url, visibility_s=0).list() == []


def test_garbage_record_is_a_batch_failure(aws: dict[str, Any], rig_factory: Any) -> None:
    rig = rig_factory()
    runtime = _runtime(aws, [rig.alpha])
    event = {"Records": [{"messageId": "m1", "body": "not json", "attributes": {}}]}
    assert lambda_consumer.handle_event(event, runtime) == {
        "batchItemFailures": [{"itemIdentifier": "m1"}]
    }


def test_in_progress_marker_blocks_then_expires(aws: dict[str, Any]) -> None:
    ledger = DynamoDBFireLedger(aws["ddb"], "idempotency")
    assert ledger.acquire("alice/j1", "f1", ttl_s=60)
    assert not ledger.acquire("alice/j1", "f2", ttl_s=60)
    ledger.release("alice/j1", "f2")  # not the holder: no effect
    assert not ledger.acquire("alice/j1", "f2", ttl_s=60)
    ledger.release("alice/j1", "f1")
    assert ledger.acquire("alice/j1", "f2", ttl_s=-1)  # already expired (a crashed run)
    assert ledger.acquire("alice/j1", "f3", ttl_s=60)
    assert ledger.claim_buffer("alice/j1", "f4", ttl_s=60)
    assert ledger.claim_buffer("alice/j1", "f4", ttl_s=60)
    assert not ledger.claim_buffer("alice/j1", "f5", ttl_s=60)
    assert [ledger.add_failure("alice/j1") for _ in range(3)] == [1, 2, 3]
    ledger.reset_failures("alice/j1")
    assert ledger.add_failure("alice/j1") == 1
    assert not ledger.is_done("f1")
    ledger.mark_done("f1")
    assert ledger.is_done("f1")


def test_dynamodb_job_control_pauses_with_a_version_bump(aws: dict[str, Any]) -> None:
    ddb = aws["ddb"]
    ddb.put_item(
        TableName="jobs",
        Item={
            "owner_id": {"S": "alice"},
            "job_id": {"S": "j1"},
            "enabled": {"BOOL": True},
            "version": {"N": "4"},
        },
    )
    control = DynamoDBJobControl(ddb, "jobs")
    assert control.pause("alice", "j1", "3 failures")
    item = ddb.get_item(TableName="jobs", Key={"owner_id": {"S": "alice"}, "job_id": {"S": "j1"}})
    assert item["Item"]["enabled"] == {"BOOL": False}
    assert item["Item"]["version"] == {"N": "5"}
    assert control.pause("alice", "j1", "again")  # already paused: no second bump
    item = ddb.get_item(TableName="jobs", Key={"owner_id": {"S": "alice"}, "job_id": {"S": "j1"}})
    assert item["Item"]["version"] == {"N": "5"}
    assert not control.pause("alice", "missing", "x")


def test_dynamodb_runs_retention_and_pages(aws: dict[str, Any]) -> None:
    from .test_sqlite_runs import run_at  # type: ignore[import-not-found]

    repo = DynamoDBRunRepository(aws["ddb"], "runs", retention=3)
    for minute in range(5):
        repo.record("alice", run_at("j1", minute))
    first = repo.list("alice", "j1", limit=2)
    assert [r.summary for r in first.items] == ["run 4", "run 3"]
    rest = repo.list("alice", "j1", limit=2, cursor=first.next_cursor)
    assert [r.summary for r in rest.items] == ["run 2"]


def test_dynamodb_runs_of_a_deleted_job_are_forgotten(aws: dict[str, Any]) -> None:
    from .test_sqlite_runs import run_at  # type: ignore[import-not-found]

    repo = DynamoDBRunRepository(aws["ddb"], "runs", retention=10)
    for minute in range(4):
        repo.record("alice", run_at("gone", minute))
        repo.record("alice", run_at("kept", minute))
        repo.record("bob", run_at("gone", minute))
    assert repo.forget_job("alice", "gone") == 4
    assert repo.list("alice", "gone").items == []
    assert len(repo.list("alice", "kept").items) == 4
    assert len(repo.list("bob", "gone").items) == 4  # another owner's job of that id
    assert repo.forget_job("alice", "gone") == 0


class ForgettingPlugin:
    """Records the forget hook's calls."""

    def __init__(self) -> None:
        self.forgotten: list[tuple[str, str, str, object]] = []

    @hookimpl
    def serverless_scheduler_forget_job(
        self, owner_id: str, job_id: str, job_type: str, state: object
    ) -> None:
        self.forgotten.append((owner_id, job_id, job_type, state))


def test_a_removal_notice_forgets_runs_failures_and_plugin_state(aws: dict[str, Any]) -> None:
    from .test_sqlite_runs import run_at  # type: ignore[import-not-found]

    plugin, state = ForgettingPlugin(), object()
    runtime = _runtime(aws, [plugin])
    runtime.state = state  # type: ignore[assignment]  # the hook only passes it on
    for minute in range(3):
        runtime.runs.record("alice", run_at("gone", minute))
    runtime.ledger.add_failure("alice/gone")
    removed = JobRemoved(job_type="alpha_job", owner_id="alice", job_id="gone", version=4)

    runtime.forget(removed)

    assert runtime.runs.list("alice", "gone").items == []
    assert runtime.ledger.add_failure("alice/gone") == 1  # counted afresh
    assert plugin.forgotten == [("alice", "gone", "alpha_job", state)]
    runtime.state = None  # without a state store the runs still go, no hook runs
    runtime.runs.record("alice", run_at("gone", 9))
    runtime.forget(removed)
    assert runtime.runs.list("alice", "gone").items == []
    assert len(plugin.forgotten) == 1


def test_fires_arriving_after_the_removal_notice_are_dropped(
    aws: dict[str, Any], rig_factory: Any
) -> None:
    """A fire still on its way (an SQS retry, a late delivery, a DLQ redrive) of a job
    whose removal notice was handled runs nothing and records nothing."""
    from .conftest import fire_of, make_job  # type: ignore[import-not-found]

    rig = rig_factory()
    runtime = _runtime(aws, [rig.alpha, rig.beta])
    lambda_consumer.configure(runtime)
    gone, kept = make_job("gone"), make_job("kept")
    notice = JobRemoved(job_type="alpha_job", owner_id="alice", job_id=gone.job_id, version=1)
    publisher = SnsPublisher(aws["sns"], aws["topic"])
    publisher.publish_removed(notice)
    assert _deliver(aws, "alpha_job") == (1, [])
    assert runtime.ledger.is_removed(f"alice/{gone.job_id}")
    assert not runtime.ledger.is_removed(f"alice/{kept.job_id}")

    publisher.publish_many([fire_of(gone), fire_of(kept)])
    assert _deliver(aws, "alpha_job") == (2, [])

    assert rig.alpha.calls == [fire_of(kept).fire_id]
    assert runtime.runs.list("alice", gone.job_id).items == []
    assert len(runtime.runs.list("alice", kept.job_id).items) == 1


def test_handler_wires_itself_from_settings(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cold start: no configure(); tables and DLQ come from SCHEDULER_* settings."""
    from datetime import UTC, datetime

    from serverless_scheduler_common import JobFired

    monkeypatch.setenv("SCHEDULER_RUNS_TABLE", "runs")
    monkeypatch.setenv("SCHEDULER_IDEMPOTENCY_TABLE", "idempotency")
    monkeypatch.setenv("SCHEDULER_JOBS_TABLE", "jobs")
    monkeypatch.setenv("SCHEDULER_AWS_REGION", REGION)
    monkeypatch.setenv("SCHEDULER_DEAD_LETTER_QUEUE_URL", aws["queues"]["beta_job"]["dlq"])
    lambda_consumer.configure(None)
    fired = JobFired(
        job_type="example_job",
        job_id="e1",
        owner_id="alice",
        scheduled_time=datetime(2026, 2, 1, tzinfo=UTC),
        job={
            "job_type": "example_job",
            "job_id": "e1",
            "owner_id": "alice",
            "name": "hello",
            "schedule": {"kind": "rate", "every": 5, "unit": "minutes"},
            "message": "from the cold start",
        },
    )
    event = {"Records": [{"messageId": "m1", "body": fired.model_dump_json(), "attributes": {}}]}
    assert lambda_consumer.handler(event, None) == {"batchItemFailures": []}
    [run] = DynamoDBRunRepository(aws["ddb"], "runs").list("alice", "e1").items
    assert (run.status, run.summary) == ("ok", "logged: from the cold start")


class CountingClient:
    """A boto3 client that records each operation and the idempotency keys it names."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.calls: list[tuple[str, list[str]]] = []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)

        def call(**kwargs: Any) -> Any:
            keys = [kwargs.get("Key", kwargs.get("Item", {})).get("pk", {}).get("S", "")]
            for request in kwargs.get("RequestItems", {}).values():
                keys = [key["pk"]["S"] for key in request["Keys"]]
            self.calls.append((name, keys))
            return method(**kwargs)

        return call


def test_the_ledger_lookup_reads_done_removed_and_failures_in_one_request(
    aws: dict[str, Any],
) -> None:
    client = CountingClient(aws["ddb"])
    ledger = DynamoDBFireLedger(client, "idempotency")
    assert ledger.lookup("j1@1", "alice/j1", failures=True) == FireLookup(False, False, 0)
    ledger.mark_done("j1@1")
    ledger.forget_job("alice", "j2")
    ledger.add_failure("alice/j1")
    ledger.add_failure("alice/j1")
    client.calls.clear()

    assert ledger.lookup("j1@1", "alice/j1", failures=True) == FireLookup(True, False, 2)
    assert ledger.lookup("j2@1", "alice/j2") == FireLookup(False, True, 0)
    assert client.calls == [
        ("batch_get_item", ["done#j1@1", "removed#alice/j1", "failures#alice/j1"]),
        ("batch_get_item", ["done#j2@1", "removed#alice/j2"]),
    ]


def test_a_fire_handled_alone_resets_failures_only_when_some_are_counted(
    aws: dict[str, Any], rig_factory: Any
) -> None:
    """On AWS every request is paid: a success deletes the failure count only when the
    read under the fire's marker found one (a delete of nothing costs a write)."""
    from .conftest import fire_of, make_job  # type: ignore[import-not-found]

    rig = rig_factory()
    runtime = _runtime(aws, [rig.alpha])
    client = CountingClient(aws["ddb"])
    ledger = DynamoDBFireLedger(client, "idempotency")
    runtime.ledger = ledger
    job = make_job("counted")
    key = f"alice/{job.job_id}"

    assert runtime.handle(fire_of(job, 0)).disposition == "done"
    assert [name for name, _ in client.calls] == [
        "batch_get_item",  # done? deleted?
        "put_item",  # the job's in-progress marker
        "batch_get_item",  # again under the marker, with the failure count
        "put_item",  # done mark
        "delete_item",  # the marker
    ]

    ledger.add_failure(key)
    client.calls.clear()
    assert runtime.handle(fire_of(job, 1)).disposition == "done"
    assert ("delete_item", [f"failures#{key}"]) in client.calls
    assert ledger.lookup("x", key, failures=True).failures == 0


def test_a_job_deleted_while_its_fire_waited_for_the_marker_runs_nothing(
    aws: dict[str, Any], rig_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from .conftest import fire_of, make_job  # type: ignore[import-not-found]

    rig = rig_factory()
    runtime = _runtime(aws, [rig.alpha])
    job = make_job("gone")
    ledger = runtime.ledger
    acquire = ledger.acquire

    def deleted_meanwhile(key: str, holder: str, *, ttl_s: int) -> bool:
        ledger.forget_job("alice", job.job_id)  # the notice, handled by another Lambda
        return acquire(key, holder, ttl_s=ttl_s)

    monkeypatch.setattr(ledger, "acquire", deleted_meanwhile)
    assert runtime.handle(fire_of(job)).disposition == "done"
    assert rig.alpha.calls == []
    assert runtime.runs.list("alice", job.job_id).items == []
