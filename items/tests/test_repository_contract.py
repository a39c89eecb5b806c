"""One contract for every JobRepository adapter (SQLite and DynamoDB under moto)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from serverless_scheduler_common.errors import (
    AlreadyExistsError,
    NotFoundError,
    VersionConflictError,
)
from serverless_scheduler_common.ports import JobRepository
from serverless_scheduler_items.pagination import InvalidCursorError

probe: Any
ProbeJob: Any


@pytest.fixture(autouse=True)
def _job_type(make_job: Any, job_cls: Any) -> None:
    global probe, ProbeJob
    probe, ProbeJob = make_job, job_cls


def test_implements_the_port(repo: JobRepository) -> None:
    assert isinstance(repo, JobRepository)


def test_create_then_get_returns_the_snapshot_at_version_1(repo: JobRepository) -> None:
    job = probe(headers={"X-Key": "s3cret"}, notify=["mailto://a@b.c"])
    stored = repo.create(job)
    assert stored.version == 1
    snapshot = repo.get("alice", job.job_id)
    assert snapshot == {**job.snapshot(), "version": 1}
    assert ProbeJob.model_validate(snapshot) == stored


def test_create_never_overwrites(repo: JobRepository) -> None:
    job = probe(name="first")
    repo.create(job)
    with pytest.raises(AlreadyExistsError):
        repo.create(job.model_copy(update={"name": "second"}))
    assert repo.get("alice", job.job_id)["name"] == "first"


def test_the_same_job_id_under_two_owners_is_two_jobs(repo: JobRepository) -> None:
    a = probe("alice", name="a")
    repo.create(a)
    repo.create(probe("bob", name="b", job_id=a.job_id))
    assert repo.get("alice", a.job_id)["name"] == "a"
    assert repo.get("bob", a.job_id)["name"] == "b"


def test_another_owners_job_is_not_found(repo: JobRepository) -> None:
    job = probe("alice")
    repo.create(job)
    with pytest.raises(NotFoundError):
        repo.get("bob", job.job_id)
    with pytest.raises(NotFoundError):
        repo.update(job.model_copy(update={"owner_id": "bob"}))
    with pytest.raises(NotFoundError):
        repo.delete("bob", job.job_id)
    assert repo.get("alice", job.job_id)["version"] == 1


def test_update_bumps_version_and_keeps_created_at(repo: JobRepository) -> None:
    job = probe()
    repo.create(job)
    later = job.created_at + timedelta(days=3)
    changed = job.model_copy(update={"name": "renamed", "created_at": later, "enabled": False})
    updated = repo.update(changed, expected_version=1)
    assert updated.version == 2
    assert updated.created_at == job.created_at
    stored = repo.get("alice", job.job_id)
    assert stored["name"] == "renamed"
    assert stored["enabled"] is False
    assert stored["version"] == 2
    assert stored["created_at"] == job.snapshot()["created_at"]
    assert repo.update(changed).version == 3  # no expected version: last writer wins


def test_update_with_a_stale_version_conflicts(repo: JobRepository) -> None:
    job = probe()
    repo.create(job)
    repo.update(job.model_copy(update={"name": "v2"}), expected_version=1)
    with pytest.raises(VersionConflictError) as info:
        repo.update(job.model_copy(update={"name": "stale"}), expected_version=1)
    assert info.value.current_version == 2
    assert repo.get("alice", job.job_id)["name"] == "v2"


def test_update_of_a_missing_job_is_not_found(repo: JobRepository) -> None:
    with pytest.raises(NotFoundError):
        repo.update(probe())


def test_delete_checks_the_version_and_removes(repo: JobRepository) -> None:
    job = probe()
    repo.create(job)
    with pytest.raises(VersionConflictError):
        repo.delete("alice", job.job_id, expected_version=7)
    repo.delete("alice", job.job_id, expected_version=1)
    with pytest.raises(NotFoundError):
        repo.get("alice", job.job_id)
    with pytest.raises(NotFoundError):
        repo.delete("alice", job.job_id)


def test_list_pages_through_one_owners_jobs_in_id_order(repo: JobRepository) -> None:
    ids = []
    for i in range(7):
        ids.append(repo.create(probe("alice", name=f"job {i}")).job_id)
        time.sleep(0.002)  # distinct millisecond prefixes keep creation order visible
    repo.create(probe("bob", name="not alice's"))
    seen: list[str] = []
    sizes = []
    cursor = None
    while True:
        page = repo.list("alice", limit=3, cursor=cursor)
        sizes.append(len(page.items))
        seen.extend(item["job_id"] for item in page.items)
        assert all(item["owner_id"] == "alice" for item in page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert sizes == [3, 3, 1]
    assert seen == sorted(ids)
    exact = repo.list("alice", limit=7)
    assert len(exact.items) == 7
    assert exact.next_cursor is None
    assert repo.list("nobody").items == []


def test_a_bad_cursor_is_rejected(repo: JobRepository) -> None:
    for cursor in ["not-a-cursor", "e30", "!!!"]:
        with pytest.raises(InvalidCursorError):
            repo.list("alice", cursor=cursor)


@pytest.mark.parametrize(
    "value", [0.1, 1e-7, 123456.789, 1 / 3, 2.0**53, -0.0000123, 1e125, 1e-130, 10.0]
)
def test_floats_round_trip_exactly(repo: JobRepository, value: float) -> None:
    job = probe(threshold=value, count=10**37)
    repo.create(job)
    stored = repo.get("alice", job.job_id)
    assert stored["threshold"] == value
    assert stored["count"] == 10**37
    assert isinstance(stored["count"], int)
    assert ProbeJob.model_validate(stored).threshold == value


def test_list_all_returns_every_owners_jobs(repo: JobRepository) -> None:
    made = {repo.create(probe(owner)).job_id for owner in ["alice", "bob", "carol"]}
    assert {item["job_id"] for item in repo.list_all()} == made


def test_timestamps_survive_as_iso_strings(repo: JobRepository) -> None:
    created = datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    job = probe(created_at=created, updated_at=created)
    repo.create(job)
    assert ProbeJob.model_validate(repo.get("alice", job.job_id)).created_at == created
