"""SNS adapter of the runtime: the distribution topic's `Publisher`.

Each adapter takes its boto3 client as a constructor argument (`self._client`),
declares the IAM service prefix it needs in `aws_service`, and calls AWS only through
`self._client.<operation>(...)`. Nothing here imports boto3.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from ..events import JobFired, JobRemoved


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
    def _attributes(event: JobFired | JobRemoved) -> dict[str, Any]:
        return {"job_type": {"DataType": "String", "StringValue": event.job_type}}

    def publish(self, fired: JobFired) -> None:
        self._client.publish(
            TopicArn=self.topic_arn,
            Message=fired.model_dump_json(),
            MessageAttributes=self._attributes(fired),
        )

    def publish_removed(self, removed: JobRemoved) -> None:
        """Tell the consumers of the job's type that it was deleted (same routing)."""
        self._client.publish(
            TopicArn=self.topic_arn,
            Message=removed.model_dump_json(),
            MessageAttributes=self._attributes(removed),
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
