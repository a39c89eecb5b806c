"""StateStore contract, run against SQLite and DynamoDB (moto) alike."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from serverless_scheduler_common.ports import StateStore
from serverless_scheduler_common.state import DynamoDBStateStore, SqliteStateStore


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["sqlite", "dynamodb"])
def store(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[StateStore]:
    if request.param == "sqlite":
        yield SqliteStateStore(tmp_path / "scheduler.db", clock=clock)
        return
    import boto3
    from moto import mock_aws

    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-central-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_ACCOUNT_ID_ENDPOINT_MODE", "disabled")
    with mock_aws():
        client = boto3.client("dynamodb", region_name="eu-central-1")
        DynamoDBStateStore.create_table(client, "state")
        yield DynamoDBStateStore(client, "state", clock=clock)


def test_adapters_implement_the_port(store: StateStore) -> None:
    assert isinstance(store, StateStore)


def test_get_put_roundtrip_and_overwrite(store: StateStore) -> None:
    assert store.get("ns", "k") is None
    value: dict[str, Any] = {"lines": ["a", "é"], "n": 3, "f": 1.5, "nested": {"x": None}}
    store.put("ns", "k", value)
    assert store.get("ns", "k") == value
    store.put("ns", "k", {"v": 2})
    assert store.get("ns", "k") == {"v": 2}
    assert store.get("other", "k") is None
    assert store.get("ns", "k2") is None


def test_history_is_newest_first_and_bounded(store: StateStore, clock: FakeClock) -> None:
    for i in range(7):
        store.append_history("ns", "job", {"i": i}, keep=4)  # same clock tick on purpose
    assert store.history("ns", "job") == [{"i": 6}, {"i": 5}, {"i": 4}, {"i": 3}]
    assert store.history("ns", "job", limit=2) == [{"i": 6}, {"i": 5}]
    assert store.history("ns", "other") == []
    clock.now += 10
    store.append_history("ns", "job", {"i": 7}, keep=4)
    assert [e["i"] for e in store.history("ns", "job")] == [7, 6, 5, 4]


def test_claim_is_true_exactly_once(store: StateStore) -> None:
    assert store.claim("ns", "fire-1") is True
    assert store.claim("ns", "fire-1") is False
    assert store.claim("ns", "fire-2") is True
    assert store.claim("other", "fire-1") is True


def test_claim_with_ttl_can_be_taken_again_after_expiry(
    store: StateStore, clock: FakeClock
) -> None:
    assert store.claim("ns", "k", ttl_s=60) is True
    clock.now += 30
    assert store.claim("ns", "k", ttl_s=60) is False
    clock.now += 31
    assert store.claim("ns", "k", ttl_s=60) is True


def test_forget_drops_everything_under_the_key_and_nothing_else(store: StateStore) -> None:
    for key in ("owner/job", "owner/job#pending", "owner/job2"):
        store.put("ns", key, {"key": key})
        for i in range(30):  # more than one DynamoDB batch of deletes
            store.append_history("ns", key, {"i": i}, keep=40)
        assert store.claim("ns", key) is True
    store.put("other", "owner/job", {"kept": True})

    store.forget("ns", "owner/job")

    assert store.get("ns", "owner/job") is None
    assert store.history("ns", "owner/job") == []
    assert store.claim("ns", "owner/job") is True  # the old claim went with the rest
    # Neighbouring keys and namespaces are untouched.
    for key in ("owner/job#pending", "owner/job2"):
        assert store.get("ns", key) == {"key": key}
        assert len(store.history("ns", key, limit=100)) == 30
        assert store.claim("ns", key) is False
    assert store.get("other", "owner/job") == {"kept": True}
    # Forgetting again, or a key never stored, is no error.
    store.forget("ns", "owner/job#pending")
    store.forget("ns", "owner/job#pending")
    store.forget("ns", "never")
    assert store.get("ns", "owner/job#pending") is None


def test_sqlite_claim_is_exclusive_across_threads(tmp_path: Path) -> None:
    store = SqliteStateStore(tmp_path / "scheduler.db")
    results: list[bool] = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        won = store.claim("ns", "same-fire")
        with lock:
            results.append(won)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 7 + [True]


def test_sqlite_state_survives_reopen(tmp_path: Path) -> None:
    SqliteStateStore(tmp_path / "scheduler.db").put("ns", "k", {"v": 1})
    reopened = SqliteStateStore(tmp_path / "scheduler.db")
    assert reopened.get("ns", "k") == {"v": 1}
    assert reopened.claim("ns", "c") is True
    assert SqliteStateStore(tmp_path / "scheduler.db").claim("ns", "c") is False


def test_stores_from_settings(tmp_path: Path) -> None:
    from serverless_scheduler_common.settings import Settings

    local = SqliteStateStore.from_settings(Settings(data_dir=tmp_path / "data"))
    local.put("ns", "k", {"v": 1})
    assert (tmp_path / "data" / "scheduler.db").exists()
    with pytest.raises(ValueError, match="SCHEDULER_STATE_TABLE"):
        DynamoDBStateStore.from_settings(Settings(), client=object())
    store = DynamoDBStateStore.from_settings(Settings(state_table="t"), client=object())
    assert store.aws_service == "dynamodb"


def test_large_values_roundtrip(store: StateStore) -> None:
    # ~900 KB of page-like text: over DynamoDB's item limit unless compressed.
    lines = [f"Section {i}: price {i * 7 % 1000} EUR, stock level {i % 13}" for i in range(18_000)]
    store.put("ns", "big", {"lines": lines})
    assert store.get("ns", "big") == {"lines": lines}
    store.append_history("ns", "big", {"diff": "\n".join(lines[:5000])}, keep=2)
    assert store.history("ns", "big")[0]["diff"].startswith("Section 0:")


def test_dynamodb_refuses_incompressible_values_with_a_clear_error() -> None:
    import os

    from serverless_scheduler_common.state import StateValueTooLargeError

    class NoCalls:
        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"no AWS call expected, got {name}")

    store = DynamoDBStateStore(NoCalls(), "t")
    noise = os.urandom(600_000).hex()
    with pytest.raises(StateValueTooLargeError, match=r"alice/job1.*css_selector"):
        store.put("alice", "job1", {"lines": [noise]})


def test_dynamodb_forget_sends_unprocessed_deletes_again(monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3
    from moto import mock_aws

    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-central-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")

    class Throttled:
        """DynamoDB client whose batch writes leave their last request unprocessed
        `misses` times (what a throttled table does)."""

        def __init__(self, inner: Any, misses: int) -> None:
            self._inner, self.misses, self.batches = inner, misses, 0

        def __getattr__(self, name: str) -> Any:
            return getattr(self._inner, name)

        def batch_write_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
            self.batches += 1
            ((table, requests),) = RequestItems.items()
            if self.misses <= 0:
                return dict(self._inner.batch_write_item(RequestItems=RequestItems))
            self.misses -= 1
            if len(requests) > 1:
                self._inner.batch_write_item(RequestItems={table: requests[:-1]})
            return {"UnprocessedItems": {table: requests[-1:]}}

    with mock_aws():
        client = boto3.client("dynamodb", region_name="eu-central-1")
        DynamoDBStateStore.create_table(client, "state")
        pauses: list[float] = []
        flaky = Throttled(client, misses=2)
        store = DynamoDBStateStore(flaky, "state", sleep=pauses.append)
        store.put("ns", "job", {"v": 1})
        for i in range(3):
            store.append_history("ns", "job", {"i": i}, keep=10)
        flaky.batches = 0

        store.forget("ns", "job")

        assert store.get("ns", "job") is None and store.history("ns", "job") == []
        assert flaky.batches == 3 and pauses == [0.1, 0.2]  # two retries, growing pauses

        for i in range(3):
            store.append_history("ns", "job", {"i": i}, keep=10)
        flaky.misses = 100  # never gets through: an error names the key
        with pytest.raises(RuntimeError, match="ns/job: DynamoDB left 1 deletes unprocessed"):
            store.forget("ns", "job")
