"""DynamoDB specifics: the stream carries snapshots, out-of-range numbers fail clearly."""

from __future__ import annotations

from typing import Any

import pytest

from serverless_scheduler_items.dynamodb_repository import (
    DynamoDBJobRepository,
    image_to_snapshot,
)


def test_stream_images_deserialise_to_the_stored_snapshot(
    dynamodb_client: Any, make_job: Any
) -> None:
    import boto3

    repo = DynamoDBJobRepository(dynamodb_client, "jobs")
    job = make_job(threshold=0.1, headers={"k": "v"})
    repo.create(job)
    repo.update(job.model_copy(update={"name": "renamed"}))
    repo.delete("alice", job.job_id)

    table = dynamodb_client.describe_table(TableName="jobs")["Table"]
    assert table["StreamSpecification"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    streams = boto3.client("dynamodbstreams", region_name="us-east-1")
    shard = streams.describe_stream(StreamArn=table["LatestStreamArn"])["StreamDescription"][
        "Shards"
    ][0]
    iterator = streams.get_shard_iterator(
        StreamArn=table["LatestStreamArn"],
        ShardId=shard["ShardId"],
        ShardIteratorType="TRIM_HORIZON",
    )["ShardIterator"]
    records = streams.get_records(ShardIterator=iterator)["Records"]
    assert [r["eventName"] for r in records] == ["INSERT", "MODIFY", "REMOVE"]
    inserted = image_to_snapshot(records[0]["dynamodb"]["NewImage"])
    assert inserted == {**job.snapshot(), "version": 1}
    modified = image_to_snapshot(records[1]["dynamodb"]["NewImage"])
    assert modified["name"] == "renamed" and modified["version"] == 2
    assert image_to_snapshot(records[2]["dynamodb"]["OldImage"]) == modified


def test_numbers_outside_dynamodb_range_fail_naming_the_field(
    dynamodb_client: Any, make_job: Any
) -> None:
    repo = DynamoDBJobRepository(dynamodb_client, "jobs")
    with pytest.raises(ValueError, match="threshold"):
        repo.create(make_job(threshold=1e300))


def test_a_missing_table_name_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="SCHEDULER_JOBS_TABLE"):
        DynamoDBJobRepository(object(), "")
