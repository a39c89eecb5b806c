"""AWS adapters of the runtime: SNS publisher, DynamoDB runs/ledger/job control, SQS DLQ.

Each takes its boto3 client as a constructor argument (`self._client`), declares the IAM
service prefix it needs in `aws_service`, and calls AWS only through
`self._client.<operation>(...)`. Nothing here imports boto3 at module import time.

Tables (Terraform creates them; the names come from settings):

- runs: partition `pk` (S, `owner_id#job_id`), sort `sk` (S,
  `<started_at UTC>#<run_id>`), TTL attribute `expires_at`.
- idempotency: partition `pk` (S), TTL attribute `expires_at`; items `done#<fire_id>`,
  `lock#<key>` (in-progress marker with expiry), `buffer#<job_key>`, `failures#<job_key>`.
- jobs: the shared jobs table (`owner_id`, `job_id`).
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, ClassVar

from ..events import JobFired
from ..ports import Page
from ..runs import Run
from .ports import DeadLetter

log = logging.getLogger(__name__)


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def _conditional_failed(exc: Exception) -> bool:
    return _error_code(exc) == "ConditionalCheckFailedException"


def _ts(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# -- SNS ------------------------------------------------------------------------------------
class SnsPublisher:
    """`Publisher` to the distribution topic.

    The body is the `JobFired` JSON (job_type at the top level, for body filter
    policies) and a `job_type` string message attribute (for attribute filter policies).
    """

    aws_service: ClassVar[str] = "sns"

    def __init__(self, client: Any, topic_arn: str) -> None:
        if not topic_arn:
            raise ValueError("topic_arn: the distribution topic ARN is required")
        self._client = client
        self.topic_arn = topic_arn

    @staticmethod
    def _attributes(fired: JobFired) -> dict[str, Any]:
        return {"job_type": {"DataType": "String", "StringValue": fired.job_type}}

    def publish(self, fired: JobFired) -> None:
        self._client.publish(
            TopicArn=self.topic_arn,
            Message=fired.model_dump_json(),
            MessageAttributes=self._attributes(fired),
        )

    def publish_many(self, fires: Iterable[JobFired]) -> None:
        """Publish in batches of 10; raise if SNS rejected any entry."""
        batch = list(fires)
        for start in range(0, len(batch), 10):
            chunk = batch[start : start + 10]
            reply = self._client.publish_batch(
                TopicArn=self.topic_arn,
                PublishBatchRequestEntries=[
                    {
                        "Id": str(i),
                        "Message": fired.model_dump_json(),
                        "MessageAttributes": self._attributes(fired),
                    }
                    for i, fired in enumerate(chunk)
                ],
            )
            failed = reply.get("Failed") or []
            if failed:
                ids = ", ".join(chunk[int(f["Id"])].fire_id for f in failed)
                raise RuntimeError(f"SNS rejected {len(failed)} fires: {ids}")


# -- DynamoDB run history -------------------------------------------------------------------
class DynamoDBRunRepository:
    """`RunRepository` on DynamoDB: newest first per job, trimmed to `retention`, TTL."""

    aws_service: ClassVar[str] = "dynamodb"

    def __init__(
        self, client: Any, table_name: str, *, retention: int = 100, ttl_days: int = 90
    ) -> None:
        if not table_name:
            raise ValueError("runs_table: the runs table name is required")
        self._client = client
        self.table_name = table_name
        self.retention = retention
        self.ttl_s = ttl_days * 86_400

    def record(self, owner_id: str, run: Run) -> None:
        job_key = f"{owner_id}#{run.job_id}"
        item: dict[str, Any] = {
            "pk": {"S": job_key},
            "sk": {"S": f"{_ts(run.started_at)}#{run.run_id}"},
            "owner_id": {"S": owner_id},
            "expires_at": {"N": str(int(time.time()) + self.ttl_s)},
            "run": {"S": run.model_dump_json()},
            "status": {"S": run.status},
        }
        self._client.put_item(TableName=self.table_name, Item=item)
        self._trim(job_key)

    def _trim(self, job_key: str) -> None:
        reply = self._client.query(
            TableName=self.table_name,
            KeyConditionExpression="pk = :k",
            ExpressionAttributeValues={":k": {"S": job_key}},
            ProjectionExpression="pk, sk",
            ScanIndexForward=False,
            Limit=self.retention + 25,
        )
        for old in reply.get("Items", [])[self.retention :]:
            self._client.delete_item(TableName=self.table_name, Key=old)

    def list(
        self, owner_id: str, job_id: str, *, limit: int = 50, cursor: str | None = None
    ) -> Page:
        limit = max(1, min(int(limit), 1000))
        params: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :k",
            "ExpressionAttributeValues": {":k": {"S": f"{owner_id}#{job_id}"}},
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if cursor:
            params["ExclusiveStartKey"] = _decode_key(cursor)
        reply = self._client.query(**params)
        items = [Run.model_validate_json(i["run"]["S"]) for i in reply.get("Items", [])]
        last = reply.get("LastEvaluatedKey")
        return Page(items=items, next_cursor=_encode_key(last) if last else None)


def _encode_key(key: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, sort_keys=True).encode()).decode()


def _decode_key(cursor: str) -> dict[str, Any]:
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except ValueError as exc:
        raise ValueError("cursor: not a cursor returned by this API") from exc
    if not isinstance(key, dict) or set(key) != {"pk", "sk"}:
        raise ValueError("cursor: not a cursor returned by this API")
    return key


# -- DynamoDB idempotency -------------------------------------------------------------------
class DynamoDBFireLedger:
    """`FireLedger` on DynamoDB with conditional writes; every item expires by TTL."""

    aws_service: ClassVar[str] = "dynamodb"

    def __init__(self, client: Any, table_name: str, *, done_ttl_s: int = 30 * 86_400) -> None:
        if not table_name:
            raise ValueError("idempotency_table: the idempotency table name is required")
        self._client = client
        self.table_name = table_name
        self.done_ttl_s = done_ttl_s

    def is_done(self, fire_id: str) -> bool:
        reply = self._client.get_item(
            TableName=self.table_name, Key={"pk": {"S": f"done#{fire_id}"}}, ConsistentRead=True
        )
        return "Item" in reply

    def mark_done(self, fire_id: str) -> None:
        expires = int(time.time()) + self.done_ttl_s
        self._client.put_item(
            TableName=self.table_name,
            Item={"pk": {"S": f"done#{fire_id}"}, "expires_at": {"N": str(expires)}},
        )

    def _take(self, pk: str, holder: str, ttl_s: int, *, reentrant: bool) -> bool:
        now = time.time()
        condition = "attribute_not_exists(pk) OR expires_at < :now"
        if reentrant:
            condition += " OR holder = :h"
        values: dict[str, Any] = {":now": {"N": repr(now)}}
        if reentrant:
            values[":h"] = {"S": holder}
        try:
            self._client.put_item(
                TableName=self.table_name,
                Item={
                    "pk": {"S": pk},
                    "holder": {"S": holder},
                    "expires_at": {"N": repr(now + ttl_s)},
                },
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
            )
        except Exception as exc:
            if _conditional_failed(exc):
                return False
            raise
        return True

    def _drop(self, pk: str, holder: str) -> None:
        try:
            self._client.delete_item(
                TableName=self.table_name,
                Key={"pk": {"S": pk}},
                ConditionExpression="holder = :h",
                ExpressionAttributeValues={":h": {"S": holder}},
            )
        except Exception as exc:
            if not _conditional_failed(exc):
                raise

    def acquire(self, key: str, holder: str, *, ttl_s: int) -> bool:
        return self._take(f"lock#{key}", holder, ttl_s, reentrant=False)

    def release(self, key: str, holder: str) -> None:
        self._drop(f"lock#{key}", holder)

    def claim_buffer(self, job_key: str, fire_id: str, *, ttl_s: int) -> bool:
        return self._take(f"buffer#{job_key}", fire_id, ttl_s, reentrant=True)

    def release_buffer(self, job_key: str, fire_id: str) -> None:
        self._drop(f"buffer#{job_key}", fire_id)

    def add_failure(self, job_key: str) -> int:
        reply = self._client.update_item(
            TableName=self.table_name,
            Key={"pk": {"S": f"failures#{job_key}"}},
            UpdateExpression="ADD failures :one SET expires_at = :exp",
            ExpressionAttributeValues={
                ":one": {"N": "1"},
                ":exp": {"N": str(int(time.time()) + self.done_ttl_s)},
            },
            ReturnValues="UPDATED_NEW",
        )
        return int(reply["Attributes"]["failures"]["N"])

    def reset_failures(self, job_key: str) -> None:
        self._client.delete_item(
            TableName=self.table_name, Key={"pk": {"S": f"failures#{job_key}"}}
        )


# -- DynamoDB job control -------------------------------------------------------------------
class DynamoDBJobControl:
    """`JobControl` on the jobs table: one conditional update (enabled=false, version+1).

    The write reaches the table's stream like any edit, so the sync Lambda disables the
    job's schedule.
    """

    aws_service: ClassVar[str] = "dynamodb"

    def __init__(self, client: Any, table_name: str) -> None:
        if not table_name:
            raise ValueError("jobs_table: the jobs table name is required")
        self._client = client
        self.table_name = table_name

    def pause(self, owner_id: str, job_id: str, reason: str) -> bool:
        key = {"owner_id": {"S": owner_id}, "job_id": {"S": job_id}}
        try:
            self._client.update_item(
                TableName=self.table_name,
                Key=key,
                UpdateExpression="SET enabled = :f, version = version + :one, updated_at = :now",
                ConditionExpression="attribute_exists(job_id) AND enabled = :t",
                ExpressionAttributeValues={
                    ":f": {"BOOL": False},
                    ":t": {"BOOL": True},
                    ":one": {"N": "1"},
                    ":now": {"S": datetime.now(UTC).isoformat().replace("+00:00", "Z")},
                },
            )
        except Exception as exc:
            if not _conditional_failed(exc):
                raise
            reply = self._client.get_item(TableName=self.table_name, Key=key, ConsistentRead=True)
            return "Item" in reply  # already disabled counts as paused
        log.warning("paused job %s/%s: %s", owner_id, job_id, reason)
        return True


# -- SQS dead-letter queue ------------------------------------------------------------------
def fired_from_body(body: str) -> JobFired:
    """A `JobFired` from an SQS body: raw SNS delivery or the SNS envelope."""
    data = json.loads(body)
    if isinstance(data, dict) and data.get("Type") == "Notification" and "Message" in data:
        data = json.loads(data["Message"])
    return JobFired.model_validate(data)


class SqsDeadLetterStore:
    """`DeadLetterStore` over a plugin's SQS dead-letter queue (for `dlq list/redrive`).

    `list` receives messages with a short visibility timeout and remembers their
    receipt handles so `remove` can delete them.
    """

    aws_service: ClassVar[str] = "sqs"

    def __init__(self, client: Any, queue_url: str, *, visibility_s: int = 30) -> None:
        if not queue_url:
            raise ValueError("dead_letter_queue_url: the DLQ URL is required")
        self._client = client
        self.queue_url = queue_url
        self.visibility_s = visibility_s
        self._receipts: dict[str, str] = {}

    def add(self, letter: DeadLetter) -> None:
        self._client.send_message(QueueUrl=self.queue_url, MessageBody=letter.payload)

    def list(self, *, limit: int = 100) -> list[DeadLetter]:
        letters: list[DeadLetter] = []
        seen: set[str] = set()
        while len(letters) < limit:
            reply = self._client.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=min(10, limit - len(letters)),
                VisibilityTimeout=self.visibility_s,
                AttributeNames=["All"],
                WaitTimeSeconds=0,
            )
            messages = [m for m in reply.get("Messages") or [] if m["MessageId"] not in seen]
            if not messages:
                break
            for message in messages:
                seen.add(message["MessageId"])
                attrs = message.get("Attributes", {})
                sent_ms = int(attrs.get("SentTimestamp", "0"))
                try:
                    fired = fired_from_body(message["Body"])
                except ValueError as exc:
                    log.warning("DLQ message %s is not a fire: %s", message["MessageId"], exc)
                    continue
                self._receipts[fired.fire_id] = message["ReceiptHandle"]
                letters.append(
                    DeadLetter(
                        fire_id=fired.fire_id,
                        job_type=fired.job_type,
                        job_id=fired.job_id,
                        owner_id=fired.owner_id,
                        payload=fired.model_dump_json(),
                        error="retries exhausted (see the run history)",
                        attempts=int(attrs.get("ApproximateReceiveCount", "1")),
                        dead_at=datetime.fromtimestamp(sent_ms / 1000, UTC),
                    )
                )
        return letters

    def remove(self, fire_id: str) -> None:
        receipt = self._receipts.pop(fire_id, None)
        if receipt is None:
            raise KeyError(f"fire {fire_id} was not listed from {self.queue_url}")
        self._client.delete_message(QueueUrl=self.queue_url, ReceiptHandle=receipt)
