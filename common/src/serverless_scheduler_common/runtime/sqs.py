"""SQS adapter of the runtime: a plugin's dead-letter queue, for `dlq list/redrive`.

Each adapter takes its boto3 client as a constructor argument (`self._client`),
declares the IAM service prefix it needs in `aws_service`, and calls AWS only through
`self._client.<operation>(...)`. Nothing here imports boto3.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any, ClassVar

from ..events import JobFired, JobRemoved
from .ports import DeadLetter

log = logging.getLogger(__name__)


def fired_from_body(body: str) -> JobFired:
    """A `JobFired` from an SQS body: raw SNS delivery or the SNS envelope."""
    event = event_from_body(body)
    if not isinstance(event, JobFired):
        raise ValueError("the message is a job removal notice, not a fire")
    return event


def event_from_body(body: str) -> JobFired | JobRemoved:
    """The fire or removal notice in an SQS or SNS message body (raw SNS delivery or
    the SNS envelope); raises ValueError when it is neither."""
    data = json.loads(body)
    if isinstance(data, dict) and data.get("Type") == "Notification" and "Message" in data:
        data = json.loads(data["Message"])
    if isinstance(data, dict) and data.get("event") == "job_removed":
        return JobRemoved.model_validate(data)
    return JobFired.model_validate(data)


#: The id prefix of a dead-letter queue message that is not a fire (`SqsDeadLetterStore`):
#: it is listed and removed under `message:<SQS MessageId>`.
MESSAGE_ID_PREFIX = "message:"


class SqsDeadLetterStore:
    """`DeadLetterStore` over a plugin's SQS dead-letter queue (for `dlq list/redrive`).

    `list` receives messages with a short visibility timeout and remembers their
    receipt handles so `remove` can delete them. A message that is not a fire (a body
    no consumer could read, or a removal notice whose plugin kept failing to forget
    the job) is listed too, under `message:<MessageId>` with its body as the payload
    and a note saying what it is, so it can be seen and removed; otherwise it would
    stay, and keep the queue's alarm on, until SQS expires it.
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
                letter = _letter(message)
                self._receipts[letter.fire_id] = message["ReceiptHandle"]
                letters.append(letter)
        return letters

    def forget_job(self, owner_id: str, job_id: str) -> int:
        """SQS cannot delete messages by job: a deleted job's letters stay until they
        expire, and a redrive of them is dropped by the runtime. Returns 0."""
        return 0

    def remove(self, fire_id: str) -> None:
        receipt = self._receipts.pop(fire_id, None)
        if receipt is None:
            raise KeyError(f"fire {fire_id} was not listed from {self.queue_url}")
        self._client.delete_message(QueueUrl=self.queue_url, ReceiptHandle=receipt)


def _letter(message: dict[str, Any]) -> DeadLetter:
    """The dead letter of one received message: its fire, or, for anything else, a
    letter named `message:<MessageId>` whose note says what it is."""
    attrs = message.get("Attributes", {})
    attempts = int(attrs.get("ApproximateReceiveCount", "1"))
    dead_at = datetime.fromtimestamp(int(attrs.get("SentTimestamp", "0")) / 1000, UTC)
    body = message.get("Body", "")
    try:
        event = event_from_body(body)
    except (ValueError, TypeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        log.warning("DLQ message %s is not a fire: %s", message["MessageId"], reason)
        return DeadLetter(
            fire_id=f"{MESSAGE_ID_PREFIX}{message['MessageId']}",
            job_type="",
            job_id="",
            owner_id="",
            payload=body,
            error=f"unreadable: neither a fire nor a removal notice ({reason})",
            attempts=attempts,
            dead_at=dead_at,
        )
    if isinstance(event, JobRemoved):
        return DeadLetter(
            fire_id=f"{MESSAGE_ID_PREFIX}{message['MessageId']}",
            job_type=event.job_type,
            job_id=event.job_id,
            owner_id=event.owner_id,
            payload=event.model_dump_json(),
            error="removal notice: the plugin kept failing to forget the deleted job",
            attempts=attempts,
            dead_at=dead_at,
        )
    return DeadLetter.of(
        event,
        error="retries exhausted (see the run history)",
        attempts=attempts,
        dead_at=dead_at,
    )
