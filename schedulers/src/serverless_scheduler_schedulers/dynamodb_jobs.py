"""Read-only view of the DynamoDB jobs table for the reconciler (a paginated scan).

The schedulers Lambda does not carry the items package, so it reads job snapshots
directly: the item is the job's JSON snapshot with numbers as Decimal.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from .streams import plain


class DynamoDBJobSnapshots:
    """Iterates every job snapshot of the jobs table."""

    aws_service: ClassVar[str] = "dynamodb"

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self.table_name = table_name

    def __iter__(self) -> Iterator[dict[str, Any]]:
        from boto3.dynamodb.types import TypeDeserializer

        deserializer = TypeDeserializer()
        kwargs: dict[str, Any] = {"TableName": self.table_name, "ConsistentRead": True}
        while True:
            page = self._client.scan(**kwargs)
            for item in page.get("Items", []):
                data = plain({k: deserializer.deserialize(v) for k, v in item.items()})
                assert isinstance(data, dict)
                yield data
            last = page.get("LastEvaluatedKey")
            if not last:
                return
            kwargs["ExclusiveStartKey"] = last
