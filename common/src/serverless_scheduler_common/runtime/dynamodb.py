"""DynamoDB adapters of the runtime: run history, fire ledger, job control.

Each adapter takes its boto3 client as a constructor argument (`self._client`),
declares the IAM service prefix it needs in `aws_service`, and calls AWS only through
`self._client.<operation>(...)`. Nothing here imports boto3.

Tables (Terraform creates them; the names come from settings):

- runs: partition `pk` (S, `owner_id#job_id`), sort `sk` (S, `<started_at UTC>#<run_id>`),
  TTL attribute `expires_at`; the run itself is the JSON attribute `run`.
- idempotency: partition `pk` (S), TTL attribute `expires_at`; items `done#<fire_id>`,
  `lock#<key>` (in-progress marker with expiry), `buffer#<job_key>`, `failures#<job_key>`.
- jobs: the shared jobs table (`owner_id`, `job_id`).
"""

from __future__ import annotations

import base64
import json
import logging
import time
from datetime import UTC, datetime
from typing import Any, ClassVar

from ..ports import Page
from ..runs import Run
from .ports import FireLookup

log = logging.getLogger(__name__)

#: Requests of one `BatchGetItem` read before its unprocessed keys are an error.
_BATCH_GET_ATTEMPTS = 6


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def _conditional_failed(exc: Exception) -> bool:
    return _error_code(exc) == "ConditionalCheckFailedException"


def _ts(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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

    def forget_job(self, owner_id: str, job_id: str) -> int:
        """Delete every run of a deleted job (its summaries and diffs go with it);
        returns how many. A job holds about `retention` runs, so one call per run is
        fine for this rare path (and needs no action the trimming does not use)."""
        params: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :k",
            "ExpressionAttributeValues": {":k": {"S": f"{owner_id}#{job_id}"}},
            "ProjectionExpression": "pk, sk",
        }
        removed = 0
        while True:
            reply = self._client.query(**params)
            for key in reply.get("Items", []):
                self._client.delete_item(TableName=self.table_name, Key=key)
                removed += 1
            if "LastEvaluatedKey" not in reply:
                return removed
            params["ExclusiveStartKey"] = reply["LastEvaluatedKey"]

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

    def forget_job(self, owner_id: str, job_id: str) -> None:
        """Mark the job deleted (`removed#<owner>/<job>`, expiring like done marks) and
        drop its failure count. Its done marks are keyed by fire: finding them would
        take a scan, so they expire by TTL."""
        key = f"{owner_id}/{job_id}"
        expires = int(time.time()) + self.done_ttl_s
        self._client.put_item(
            TableName=self.table_name,
            Item={"pk": {"S": f"removed#{key}"}, "expires_at": {"N": str(expires)}},
        )
        self.reset_failures(key)

    def is_removed(self, job_key: str) -> bool:
        reply = self._client.get_item(
            TableName=self.table_name,
            Key={"pk": {"S": f"removed#{job_key}"}},
            ConsistentRead=True,
            ProjectionExpression="pk",
        )
        return "Item" in reply

    def lookup(self, fire_id: str, job_key: str, *, failures: bool = False) -> FireLookup:
        """One consistent `BatchGetItem` of the fire's done mark, the job's deleted mark
        and (with `failures`) its failure count, where separate reads took one request
        each; keys DynamoDB leaves unprocessed are asked again with backoff."""
        keys = [f"done#{fire_id}", f"removed#{job_key}"]
        if failures:
            keys.append(f"failures#{job_key}")
        request: dict[str, Any] = {
            self.table_name: {
                "Keys": [{"pk": {"S": key}} for key in keys],
                "ConsistentRead": True,
                "ProjectionExpression": "#pk, #failures",
                "ExpressionAttributeNames": {"#pk": "pk", "#failures": "failures"},
            }
        }
        found: dict[str, dict[str, Any]] = {}
        for attempt in range(_BATCH_GET_ATTEMPTS):
            reply = self._client.batch_get_item(RequestItems=request)
            for item in reply.get("Responses", {}).get(self.table_name, []):
                found[item["pk"]["S"]] = item
            request = reply.get("UnprocessedKeys") or {}
            if not request:
                break
            time.sleep(min(1.0, 0.05 * 2**attempt))
        else:
            raise RuntimeError(f"{self.table_name}: keys left unprocessed: {len(request)}")
        counted = found.get(f"failures#{job_key}", {}).get("failures", {}).get("N", "0")
        return FireLookup(done=keys[0] in found, removed=keys[1] in found, failures=int(counted))


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
