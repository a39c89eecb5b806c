"""Publisher for manual runs on AWS: one SNS message per fire, filterable by job_type.

Scheduled fires reach SNS straight from EventBridge Scheduler; this adapter only
carries "run now" fires from the items Lambda, in the same message shape.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from serverless_scheduler_common.events import JobFired

log = logging.getLogger(__name__)


class SNSPublisher:
    """`Publisher` over an SNS topic; `client` is a boto3 SNS client."""

    aws_service: ClassVar[str] = "sns"

    def __init__(self, client: Any, topic_arn: str) -> None:
        if not topic_arn:
            raise ValueError("topic_arn is required (SCHEDULER_TOPIC_ARN)")
        self._client = client
        self._topic_arn = topic_arn

    def publish(self, fired: JobFired) -> None:
        self._client.publish(
            TopicArn=self._topic_arn,
            Message=fired.model_dump_json(),
            MessageAttributes={"job_type": {"DataType": "String", "StringValue": fired.job_type}},
        )
        log.info("published fire %s of job %s", fired.fire_id, fired.job_id)
