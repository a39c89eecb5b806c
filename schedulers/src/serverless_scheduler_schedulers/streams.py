"""DynamoDB stream records -> `JobChange`, and the ordered, partial-failure batch sync.

The jobs table item is the job's `model_dump(mode="json")` snapshot with numbers as
Decimal (keys `owner_id`, `job_id`; stream view NEW_AND_OLD_IMAGES).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar

from pydantic import ValidationError

from serverless_scheduler_common.events import JobChange
from serverless_scheduler_common.ports import ScheduleBackend
from serverless_scheduler_common.registry import JobTypeRegistry

from .sync import apply_changes

log = logging.getLogger(__name__)

_KINDS = {"INSERT": "insert", "MODIFY": "modify", "REMOVE": "remove"}


class MalformedRecordError(ValueError):
    """A stream record that can never become a `JobChange`."""


def plain(value: Any) -> Any:
    """Decimals back to int/float (and sets to lists), recursively."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted(plain(v) for v in value)
    return value


def _image(raw: Any) -> dict[str, Any] | None:
    if raw is None:
        return None
    from boto3.dynamodb.types import TypeDeserializer

    deserializer = TypeDeserializer()
    out = {key: deserializer.deserialize(value) for key, value in raw.items()}
    result = plain(out)
    assert isinstance(result, dict)
    return result


def change_from_record(record: Mapping[str, Any]) -> JobChange:
    """Parse one stream record (NEW_AND_OLD_IMAGES) into a `JobChange`."""
    try:
        kind = _KINDS[record["eventName"]]
        body = record["dynamodb"]
        keys = _image(body["Keys"]) or {}
        new, old = _image(body.get("NewImage")), _image(body.get("OldImage"))
        image = new if kind != "remove" else old
        version = (image or {}).get("version", 0)
        return JobChange(
            kind=kind,
            owner_id=str(keys["owner_id"]),
            job_id=str(keys["job_id"]),
            version=int(version),
            old=old,
            new=new,
        )
    except (KeyError, TypeError, ValueError, AttributeError, ValidationError) as exc:
        raise MalformedRecordError(f"malformed stream record: {exc}") from exc


def sequence_number(record: Mapping[str, Any]) -> str:
    body = record.get("dynamodb")
    seq = body.get("SequenceNumber") if isinstance(body, Mapping) else None
    return str(seq or record.get("eventID") or "")


class SqsDeadLetterSink:
    """Sends records that can never be applied to an SQS queue for inspection."""

    aws_service: ClassVar[str] = "sqs"

    def __init__(self, client: Any, queue_url: str) -> None:
        self._client = client
        self.queue_url = queue_url

    def __call__(self, record: Mapping[str, Any], reason: str) -> None:
        body = json.dumps({"reason": reason, "record": record}, default=str)
        self._client.send_message(QueueUrl=self.queue_url, MessageBody=body)


DeadLetterSink = Callable[[Mapping[str, Any], str], None]


@dataclass
class StreamSync:
    """Applies a stream batch in order and reports partial failures the Lambda way.

    `on_removed(change)` runs for each applied removal (the sync Lambda publishes a
    `JobRemoved` notice there, so the job's plugin forgets its state). When it fails,
    the batch reports that record as the first failure: Lambda delivers it and the
    records after it again, and the versioned sync makes their second pass a no-op.
    """

    backend: ScheduleBackend
    registry: JobTypeRegistry | None = None
    dead_letter: DeadLetterSink | None = None
    on_removed: Callable[[JobChange], None] | None = None
    stats: dict[str, int] = field(default_factory=dict)

    def handle(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """Returns `{"batchItemFailures": [...]}` naming the first failed record, if any."""
        records = list(event.get("Records") or [])
        parsed: list[tuple[int, JobChange]] = []
        # A malformed record that cannot be parked stops the batch there; the records
        # before it are still applied, since the failure reply checkpoints the shard
        # just before it and Lambda never delivers them again.
        unparked: int | None = None
        for index, record in enumerate(records):
            try:
                parsed.append((index, change_from_record(record)))
            except MalformedRecordError as exc:
                if not self._route_malformed(record, str(exc)):
                    unparked = index
                    break
        batch = apply_changes([c for _, c in parsed], self.backend, self.registry)
        for result in batch.results:
            self.stats[result.action] = self.stats.get(result.action, 0) + 1
        failure = batch.failure
        applied = len(parsed) if failure is None else failure.index
        unannounced = self._announce_removals(parsed[:applied])
        if unannounced is not None:
            return self._fail(records, unannounced)
        if failure is None:
            if unparked is not None:
                return self._fail(records, unparked)
            return {"batchItemFailures": []}
        index = parsed[failure.index][0]
        # A snapshot that cannot validate never will: route it and resume after it.
        permanent = isinstance(failure.cause, ValidationError | ValueError)
        if permanent and self._route_malformed(records[index], str(failure.cause)):
            return self.handle({"Records": records[index + 1 :]})
        return self._fail(records, index)

    def _announce_removals(self, applied: list[tuple[int, JobChange]]) -> int | None:
        """Run `on_removed` for the removals among `applied`; the record index of the
        first that failed, None when all went through."""
        if self.on_removed is None:
            return None
        for index, change in applied:
            if change.kind != "remove":
                continue
            try:
                self.on_removed(change)
            except Exception:
                log.exception(
                    "could not announce the removal of %s/%s", change.owner_id, change.job_id
                )
                return index
            self.stats["announced"] = self.stats.get("announced", 0) + 1
        return None

    def _route_malformed(self, record: Mapping[str, Any], reason: str) -> bool:
        log.error("stream record %s dropped: %s", sequence_number(record), reason)
        self.stats["malformed"] = self.stats.get("malformed", 0) + 1
        if self.dead_letter is None:
            return True
        try:
            self.dead_letter(record, reason)
        except Exception:
            log.exception("could not dead-letter record %s", sequence_number(record))
            return False
        return True

    def _fail(self, records: list[Any], index: int) -> dict[str, Any]:
        self.stats["failed"] = self.stats.get("failed", 0) + 1
        return {"batchItemFailures": [{"itemIdentifier": sequence_number(records[index])}]}
