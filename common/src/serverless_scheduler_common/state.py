"""StateStore adapters: plugin snapshots, bounded histories and once-only claims.

`SqliteStateStore` keeps state in local mode's one SQLite file; `DynamoDBStateStore`
keeps it in one DynamoDB table on AWS (boto3 client passed in, imported nowhere here).
Values are JSON-compatible dicts.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from .settings import Settings
from .sqlite import connect, db_path_for

_SCHEMA = """
CREATE TABLE IF NOT EXISTS plugin_state (
    namespace TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (namespace, key)
);
CREATE TABLE IF NOT EXISTS plugin_history (
    namespace TEXT NOT NULL,
    key TEXT NOT NULL,
    seq INTEGER NOT NULL,
    entry TEXT NOT NULL,
    PRIMARY KEY (namespace, key, seq)
);
CREATE TABLE IF NOT EXISTS plugin_claims (
    namespace TEXT NOT NULL,
    key TEXT NOT NULL,
    expires_at REAL,
    PRIMARY KEY (namespace, key)
);
"""


class SqliteStateStore:
    """StateStore in SQLite (WAL); one connection per thread, safe across processes."""

    def __init__(self, db_path: str | Path, *, clock: Callable[[], float] = time.time) -> None:
        self._path = str(db_path)
        self._clock = clock
        self._local = threading.local()
        with self._conn() as conn:
            conn.executescript(_SCHEMA)

    @classmethod
    def from_settings(cls, settings: Settings) -> SqliteStateStore:
        """The store in local mode's `<data_dir>/scheduler.db`."""
        return cls(db_path_for(settings.data_dir))

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self._path, check_same_thread=True)  # one connection per thread
            self._local.conn = conn
        return conn

    def close(self) -> None:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def get(self, namespace: str, key: str) -> dict[str, Any] | None:
        row = (
            self._conn()
            .execute("SELECT value FROM plugin_state WHERE namespace=? AND key=?", (namespace, key))
            .fetchone()
        )
        return json.loads(row[0]) if row else None

    def put(self, namespace: str, key: str, value: dict[str, Any]) -> None:
        self._conn().execute(
            "INSERT INTO plugin_state (namespace, key, value, updated_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(namespace, key) DO UPDATE SET value=excluded.value, "
            "updated_at=excluded.updated_at",
            (namespace, key, json.dumps(value, separators=(",", ":")), self._clock()),
        )

    def append_history(self, namespace: str, key: str, entry: dict[str, Any], *, keep: int) -> None:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute(
                "SELECT COALESCE(MAX(seq), 0) FROM plugin_history WHERE namespace=? AND key=?",
                (namespace, key),
            ).fetchone()
            seq = int(row[0]) + 1
            conn.execute(
                "INSERT INTO plugin_history (namespace, key, seq, entry) VALUES (?, ?, ?, ?)",
                (namespace, key, seq, json.dumps(entry, separators=(",", ":"))),
            )
            conn.execute(
                "DELETE FROM plugin_history WHERE namespace=? AND key=? AND seq<=?",
                (namespace, key, seq - max(keep, 0)),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def history(self, namespace: str, key: str, *, limit: int = 50) -> list[dict[str, Any]]:
        rows = (
            self._conn()
            .execute(
                "SELECT entry FROM plugin_history WHERE namespace=? AND key=? "
                "ORDER BY seq DESC LIMIT ?",
                (namespace, key, limit),
            )
            .fetchall()
        )
        return [json.loads(row[0]) for row in rows]

    def claim(self, namespace: str, key: str, *, ttl_s: int | None = None) -> bool:
        now = self._clock()
        expires = now + ttl_s if ttl_s else None
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute(
                "SELECT expires_at FROM plugin_claims WHERE namespace=? AND key=?",
                (namespace, key),
            ).fetchone()
            if row is not None and (row[0] is None or row[0] > now):
                conn.execute("COMMIT")
                return False
            conn.execute(
                "INSERT OR REPLACE INTO plugin_claims (namespace, key, expires_at) VALUES (?, ?, ?)",
                (namespace, key, expires),
            )
            conn.execute("COMMIT")
            return True
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def forget(self, namespace: str, key: str) -> None:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            for table in ("plugin_state", "plugin_history", "plugin_claims"):
                conn.execute(f"DELETE FROM {table} WHERE namespace=? AND key=?", (namespace, key))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


#: Tries of one batch of deletes that DynamoDB keeps returning as unprocessed.
_DELETE_ATTEMPTS = 6

#: Values larger than this are stored zlib-compressed (page text compresses 4-10x).
_COMPRESS_ABOVE = 32 * 1024
#: DynamoDB refuses items over 400 KB; leave room for the keys.
_MAX_ITEM_BYTES = 390 * 1024


class StateValueTooLargeError(ValueError):
    """A value does not fit one DynamoDB item even compressed."""


def _encode_value(value: dict[str, Any], what: str) -> dict[str, Any]:
    """The value attribute: JSON text (`v`), or compressed JSON (`z`) when large."""
    text = json.dumps(value, separators=(",", ":"))
    if len(text) <= _COMPRESS_ABOVE:
        return {"v": {"S": text}}
    packed = zlib.compress(text.encode("utf-8"), 6)
    if len(packed) > _MAX_ITEM_BYTES:
        raise StateValueTooLargeError(
            f"state for {what} is {len(packed) // 1024} KB compressed, over DynamoDB's "
            "400 KB item limit; narrow the job with a css_selector or xpath"
        )
    return {"z": {"B": packed}}


def _decode_value(item: dict[str, Any]) -> dict[str, Any]:
    if "z" in item:
        data: dict[str, Any] = json.loads(zlib.decompress(item["z"]["B"]).decode("utf-8"))
        return data
    plain: dict[str, Any] = json.loads(item["v"]["S"])
    return plain


class DynamoDBStateStore:
    """StateStore in one DynamoDB table (resource-free: low-level client, typed attributes).

    Key schema: partition key `pk` (S) = namespace + key, sort key `sk` (S):
    `state` for the snapshot, `hist#<20-digit seq>` for history entries, `claim` for the
    once-only claim (a conditional put). Values are stored as a JSON string attribute
    `v` (no Decimal round trips), or zlib-compressed JSON in the binary attribute `z`
    above 32 KB; a value that does not fit even compressed raises
    StateValueTooLargeError naming the job.
    An `expires_at` number attribute is set on claims with a TTL (enable table TTL on it).
    """

    aws_service: ClassVar[str] = "dynamodb"

    def __init__(
        self,
        client: Any,
        table_name: str,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self._table = table_name
        self._clock = clock
        self._sleep = sleep

    @classmethod
    def from_settings(cls, settings: Settings, client: Any = None) -> DynamoDBStateStore:
        """The store in `SCHEDULER_STATE_TABLE`; a client is created when none is given."""
        if not settings.state_table:
            raise ValueError("SCHEDULER_STATE_TABLE is not set")
        if client is None:
            import boto3  # type: ignore[import-untyped,unused-ignore]

            client = boto3.client("dynamodb", region_name=settings.aws_region)
        return cls(client, settings.state_table)

    @staticmethod
    def _pk(namespace: str, key: str) -> dict[str, str]:
        return {"S": f"{namespace}\x1f{key}"}

    def get(self, namespace: str, key: str) -> dict[str, Any] | None:
        reply = self._client.get_item(
            TableName=self._table,
            Key={"pk": self._pk(namespace, key), "sk": {"S": "state"}},
            ConsistentRead=True,
        )
        item = reply.get("Item")
        return _decode_value(item) if item else None

    def put(self, namespace: str, key: str, value: dict[str, Any]) -> None:
        encoded = _encode_value(value, f"{namespace}/{key}")
        self._client.put_item(
            TableName=self._table,
            Item={"pk": self._pk(namespace, key), "sk": {"S": "state"}, **encoded},
        )

    def append_history(self, namespace: str, key: str, entry: dict[str, Any], *, keep: int) -> None:
        # Sequence from the clock (microseconds), bumped past the newest entry, keeps
        # entries ordered without a counter item.
        encoded = _encode_value(entry, f"{namespace}/{key} history")
        existing = self._history_keys(namespace, key)
        seq = int(self._clock() * 1_000_000)
        if existing:
            seq = max(seq, int(existing[0]["S"].removeprefix("hist#")) + 1)
        self._client.put_item(
            TableName=self._table,
            Item={
                "pk": self._pk(namespace, key),
                "sk": {"S": f"hist#{seq:020d}"},
                **encoded,
            },
        )
        stale = existing[keep - 1 :] if keep > 0 else [{"S": f"hist#{seq:020d}"}, *existing]
        self._delete(namespace, key, stale)

    def _delete(self, namespace: str, key: str, sort_keys: list[dict[str, str]]) -> None:
        """Delete the items `sort_keys` under `key`, 25 per request.

        A throttled batch comes back partly done (`UnprocessedItems`, which botocore does
        not retry): those deletes are sent again with a growing pause, and an error
        names the key if some are still left after `_DELETE_ATTEMPTS` tries.
        """
        for start in range(0, len(sort_keys), 25):
            requests: dict[str, Any] = {
                self._table: [
                    {"DeleteRequest": {"Key": {"pk": self._pk(namespace, key), "sk": sk}}}
                    for sk in sort_keys[start : start + 25]
                ]
            }
            for attempt in range(_DELETE_ATTEMPTS):
                if attempt:
                    self._sleep(min(1.0, 0.05 * 2**attempt))
                reply = self._client.batch_write_item(RequestItems=requests)
                requests = reply.get("UnprocessedItems") or {}
                if not requests:
                    break
            else:
                left = sum(len(items) for items in requests.values())
                raise RuntimeError(
                    f"state of {namespace}/{key}: DynamoDB left {left} deletes unprocessed"
                )

    def forget(self, namespace: str, key: str) -> None:
        # Everything under the key: the snapshot, the history entries and the claim.
        self._delete(namespace, key, self._sort_keys(namespace, key))

    def _history_keys(self, namespace: str, key: str) -> list[dict[str, str]]:
        return self._sort_keys(namespace, key, prefix="hist#")

    def _sort_keys(self, namespace: str, key: str, *, prefix: str = "") -> list[dict[str, str]]:
        """The sort keys under `key` (those that start with `prefix`), last first."""
        keys: list[dict[str, str]] = []
        condition, values = "pk = :pk", {":pk": self._pk(namespace, key)}
        if prefix:
            condition += " AND begins_with(sk, :h)"
            values[":h"] = {"S": prefix}
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": values,
            "ProjectionExpression": "sk",
            "ScanIndexForward": False,
            "ConsistentRead": True,
        }
        while True:
            reply = self._client.query(**kwargs)
            keys.extend(item["sk"] for item in reply.get("Items", []))
            if "LastEvaluatedKey" not in reply:
                return keys
            kwargs["ExclusiveStartKey"] = reply["LastEvaluatedKey"]

    def history(self, namespace: str, key: str, *, limit: int = 50) -> list[dict[str, Any]]:
        reply = self._client.query(
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :h)",
            ExpressionAttributeValues={":pk": self._pk(namespace, key), ":h": {"S": "hist#"}},
            ScanIndexForward=False,
            Limit=max(limit, 1),
            ConsistentRead=True,
        )
        return [_decode_value(item) for item in reply.get("Items", [])][:limit]

    def claim(self, namespace: str, key: str, *, ttl_s: int | None = None) -> bool:
        now = self._clock()
        item: dict[str, Any] = {"pk": self._pk(namespace, key), "sk": {"S": "claim"}}
        if ttl_s:
            item["expires_at"] = {"N": str(int(now + ttl_s))}
        try:
            self._client.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression="attribute_not_exists(pk) OR expires_at < :now",
                ExpressionAttributeValues={":now": {"N": str(int(now))}},
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    @staticmethod
    def create_table(client: Any, table_name: str) -> None:
        """Create the table (tests and local tooling; Terraform owns it on AWS)."""
        client.create_table(
            TableName=table_name,
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )


__all__ = ["DynamoDBStateStore", "SqliteStateStore", "StateValueTooLargeError"]
