"""AWS job store: one DynamoDB table keyed by (`owner_id`, `job_id`).

The item is the job's JSON snapshot with numbers as `Decimal`; the table's stream
(NEW_AND_OLD_IMAGES) is the change feed the schedulers consume. Writes are
conditional: create never overwrites, update/delete check the stored version.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from decimal import Decimal
from typing import Any, ClassVar

from serverless_scheduler_common.errors import (
    AlreadyExistsError,
    NotFoundError,
    VersionConflictError,
)
from serverless_scheduler_common.job import ScheduledJob
from serverless_scheduler_common.ports import Page

from .job_payloads import unstorable_numbers
from .pagination import decode_cursor, encode_cursor

log = logging.getLogger(__name__)

#: Attempts of an unconditional update that keeps losing races to other writers.
_UPDATE_ATTEMPTS = 5


def to_dynamodb(value: Any) -> Any:
    """Snapshot data -> DynamoDB-ready data (floats become exact Decimals)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, float):
        # repr() is the shortest string that parses back to the same float.
        return Decimal(repr(value))
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, dict):
        return {k: to_dynamodb(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_dynamodb(v) for v in value]
    return value


def from_dynamodb(value: Any) -> Any:
    """DynamoDB data -> snapshot data (Decimals back to int or float)."""
    if isinstance(value, Decimal):
        # Integers are written digit by digit (exponent 0); a float's repr is written
        # with a fraction ("10.0") or in exponent notation ("1e+16"), so it stays a float.
        if value.as_tuple().exponent == 0:
            return int(value)
        return float(value)
    if isinstance(value, dict):
        return {k: from_dynamodb(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_dynamodb(v) for v in value]
    if isinstance(value, set):
        return [from_dynamodb(v) for v in sorted(value)]
    return value


def image_to_snapshot(image: dict[str, Any]) -> dict[str, Any]:
    """A stream image or low-level item (`{"name": {"S": ...}}`) -> the job snapshot."""
    from boto3.dynamodb.types import TypeDeserializer

    deserializer = TypeDeserializer()
    return {k: from_dynamodb(deserializer.deserialize(v)) for k, v in image.items()}


def snapshot_to_item(snapshot: dict[str, Any]) -> dict[str, Any]:
    """A job snapshot -> a low-level DynamoDB item.

    Raises ValueError naming the field when a number is outside DynamoDB's range.
    """
    from boto3.dynamodb.types import TypeSerializer

    bad = unstorable_numbers(snapshot)
    if bad:
        names = ", ".join(".".join(map(str, path)) for path in bad)
        raise ValueError(f"number out of DynamoDB's range in field(s): {names}")
    serializer = TypeSerializer()
    return {k: serializer.serialize(to_dynamodb(v)) for k, v in snapshot.items()}


def jobs_table_definition(table_name: str) -> dict[str, Any]:
    """`create_table` arguments matching the Terraform table (tests and local tooling)."""
    return {
        "TableName": table_name,
        "KeySchema": [
            {"AttributeName": "owner_id", "KeyType": "HASH"},
            {"AttributeName": "job_id", "KeyType": "RANGE"},
        ],
        "AttributeDefinitions": [
            {"AttributeName": "owner_id", "AttributeType": "S"},
            {"AttributeName": "job_id", "AttributeType": "S"},
        ],
        "BillingMode": "PAY_PER_REQUEST",
        "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    }


class DynamoDBJobRepository:
    """`JobRepository` over a DynamoDB table; `client` is a boto3 DynamoDB client."""

    aws_service: ClassVar[str] = "dynamodb"

    def __init__(self, client: Any, table_name: str) -> None:
        if not table_name:
            raise ValueError("table_name is required (SCHEDULER_JOBS_TABLE)")
        self._client = client
        self._table = table_name

    @staticmethod
    def _key(owner_id: str, job_id: str) -> dict[str, Any]:
        return {"owner_id": {"S": owner_id}, "job_id": {"S": job_id}}

    @staticmethod
    def _is_conditional_failure(exc: Exception) -> bool:
        response = getattr(exc, "response", None) or {}
        code = response.get("Error", {}).get("Code")
        return bool(code == "ConditionalCheckFailedException")

    def _current(self, owner_id: str, job_id: str) -> dict[str, Any] | None:
        response = self._client.get_item(
            TableName=self._table, Key=self._key(owner_id, job_id), ConsistentRead=True
        )
        item = response.get("Item")
        return image_to_snapshot(item) if item else None

    def create(self, job: ScheduledJob) -> ScheduledJob:
        snapshot = job.snapshot()
        snapshot["version"] = 1
        stored = type(job).model_validate(snapshot)
        try:
            self._client.put_item(
                TableName=self._table,
                Item=snapshot_to_item(snapshot),
                ConditionExpression="attribute_not_exists(job_id)",
            )
        except Exception as exc:
            if self._is_conditional_failure(exc):
                raise AlreadyExistsError(f"job {job.job_id!r} already exists") from None
            raise
        return stored

    def get(self, owner_id: str, job_id: str) -> dict[str, Any]:
        snapshot = self._current(owner_id, job_id)
        if snapshot is None:
            raise NotFoundError(f"job {job_id!r} not found")
        return snapshot

    def list(self, owner_id: str, *, limit: int = 50, cursor: str | None = None) -> Page:
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "owner_id = :o",
            "ExpressionAttributeValues": {":o": {"S": owner_id}},
        }
        if cursor:
            kwargs["ExclusiveStartKey"] = self._key(owner_id, decode_cursor(cursor))
        items: list[dict[str, Any]] = []
        # One extra item tells whether another page exists; a query page may also stop
        # early at 1 MB, so keep going until enough items or the end.
        while len(items) <= limit:
            response = self._client.query(Limit=limit + 1 - len(items), **kwargs)
            items.extend(image_to_snapshot(i) for i in response.get("Items", []))
            last = response.get("LastEvaluatedKey")
            if not last:
                break
            kwargs["ExclusiveStartKey"] = last
        page = items[:limit]
        next_cursor = encode_cursor(page[-1]["job_id"]) if len(items) > limit else None
        return Page(items=page, next_cursor=next_cursor)

    def update(self, job: ScheduledJob, *, expected_version: int | None = None) -> ScheduledJob:
        for _ in range(_UPDATE_ATTEMPTS):
            old = self._current(job.owner_id, job.job_id)
            if old is None:
                raise NotFoundError(f"job {job.job_id!r} not found")
            current = int(old["version"])
            if expected_version is not None and current != expected_version:
                raise VersionConflictError(
                    f"job {job.job_id!r} is at version {current}, not {expected_version}",
                    current_version=current,
                )
            snapshot = job.snapshot()
            snapshot["version"] = current + 1
            snapshot["created_at"] = old["created_at"]
            stored = type(job).model_validate(snapshot)
            try:
                self._client.put_item(
                    TableName=self._table,
                    Item=snapshot_to_item(stored.snapshot()),
                    ConditionExpression="attribute_exists(job_id) AND version = :v",
                    ExpressionAttributeValues={":v": {"N": str(current)}},
                )
            except Exception as exc:
                if not self._is_conditional_failure(exc):
                    raise
                if expected_version is not None:
                    raise VersionConflictError(
                        f"job {job.job_id!r} changed concurrently", current_version=None
                    ) from None
                continue  # lost a race with another writer: re-read and retry
            return stored
        raise VersionConflictError(f"job {job.job_id!r} keeps changing; retry the update")

    def delete(self, owner_id: str, job_id: str, *, expected_version: int | None = None) -> None:
        condition = "attribute_exists(job_id)"
        values: dict[str, Any] = {}
        if expected_version is not None:
            condition += " AND version = :v"
            values[":v"] = {"N": str(expected_version)}
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "Key": self._key(owner_id, job_id),
            "ConditionExpression": condition,
        }
        if values:
            kwargs["ExpressionAttributeValues"] = values
        try:
            self._client.delete_item(**kwargs)
        except Exception as exc:
            if not self._is_conditional_failure(exc):
                raise
            old = self._current(owner_id, job_id)
            if old is None:
                raise NotFoundError(f"job {job_id!r} not found") from None
            raise VersionConflictError(
                f"job {job_id!r} is at version {old['version']}, not {expected_version}",
                current_version=int(old["version"]),
            ) from None

    def list_all(self) -> Iterator[dict[str, Any]]:
        kwargs: dict[str, Any] = {"TableName": self._table, "ConsistentRead": True}
        while True:
            response = self._client.scan(**kwargs)
            for item in response.get("Items", []):
                yield image_to_snapshot(item)
            last = response.get("LastEvaluatedKey")
            if not last:
                return
            kwargs["ExclusiveStartKey"] = last
