"""The hot path's shortcuts give the same results as the validated, general code."""

from __future__ import annotations

import copy
import pickle
import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from pydantic import ValidationError

from serverless_scheduler_common import Run
from serverless_scheduler_common.events import JobFired, build_unchecked
from serverless_scheduler_common.runtime.core import _fast_run
from serverless_scheduler_common.runtime.sqlite import (
    _RETAINED_RUNS,
    SqliteFireLedger,
    SqliteRunRepository,
    _started_text,
    _ts,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_fast_run_equals_a_validated_run() -> None:
    data = {
        "run_id": "01hzzzzzzzzzzzzzzzzzzzzzzz",
        "job_id": "j1",
        "fire_id": "j1@x",
        "scheduled_time": T0,
        "started_at": T0,
        "finished_at": T0 + timedelta(seconds=1),
        "status": "ok",
        "summary": "",
        "detail": None,
    }
    fast = _fast_run(dict(data))
    assert fast == Run.model_validate(data)
    assert fast.model_dump_json() == Run.model_validate(data).model_dump_json()
    assert Run.model_validate_json(fast.model_dump_json()) == fast


def test_unchecked_instance_behaves_like_a_validated_one() -> None:
    data = {
        "job_type": "t",
        "job_id": "j1",
        "owner_id": "o1",
        "scheduled_time": T0,
        "job": {"a": 1},
        "fire_id": "j1@x",
        "manual": False,
    }
    checked = JobFired.model_validate(data)
    fast = build_unchecked(JobFired, dict(data))
    assert fast == checked
    assert fast.model_fields_set == checked.model_fields_set == set(JobFired.model_fields)
    assert fast.model_dump(exclude_unset=True) == checked.model_dump(exclude_unset=True)
    assert fast.__pydantic_extra__ is None and fast.__pydantic_private__ is None
    assert fast.model_copy(update={"manual": True}).manual is True
    assert copy.deepcopy(fast) == checked
    assert pickle.loads(pickle.dumps(fast)) == checked
    with pytest.raises(ValidationError):
        fast.manual = True  # frozen like a validated fire
    # Each instance has its own set of set fields.
    other = build_unchecked(JobFired, dict(data))
    other.model_fields_set.discard("manual")
    assert "manual" in fast.model_fields_set


def test_timestamp_text_matches_strftime_and_sorts() -> None:
    for value in [
        T0,
        T0 + timedelta(microseconds=1),
        datetime(2026, 3, 1, 14, 0, 0, 5, tzinfo=timezone(timedelta(hours=2))),
    ]:
        assert _ts(value) == value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert _ts(T0) < _ts(T0 + timedelta(microseconds=1))


@pytest.mark.parametrize(
    "started",
    [
        T0,  # a whole second: the JSON has no fraction
        T0 + timedelta(microseconds=1),
        T0 + timedelta(seconds=59, microseconds=999_999),
        datetime(2026, 3, 1, 14, 0, 0, 5, tzinfo=timezone(timedelta(hours=2))),
        datetime(2026, 3, 1, 11, 59, 0, 250_000, tzinfo=timezone(timedelta(hours=-1))),
    ],
)
def test_started_text_from_the_json_equals_ts(started: datetime) -> None:
    run = Run(
        job_id='j"started_at":"1999',  # the key's text inside a value is escaped
        fire_id="f",
        scheduled_time=started,
        started_at=started,
        status="ok",
        summary='"started_at":"2000-01-01T00:00:00.000000Z"',
    )
    data = run.__pydantic_serializer__.to_json(run).decode()
    assert _started_text(run, data) == _ts(started)


def _run(minute: int) -> Run:
    when = T0 + timedelta(minutes=minute)
    return Run(job_id="j1", fire_id=f"f{minute}", scheduled_time=when, started_at=when, status="ok")


def _layout(db: Path) -> tuple[str, list[str]]:
    conn = sqlite3.connect(db)
    try:
        table = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'runs'").fetchone()[0]
        indexes = conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'runs'"
        ).fetchall()
    finally:
        conn.close()
    return str(table), sorted(str(row[0]) for row in indexes)


def test_runs_are_appended_and_chained_with_no_index(tmp_path: Path) -> None:
    db = tmp_path / "scheduler.db"
    SqliteRunRepository(db)
    SqliteRunRepository(db)  # opening the file again adds nothing
    table, indexes = _layout(db)
    assert "WITHOUT ROWID" not in table  # rows go to the table's end, in insert order
    assert indexes == []  # a run writes the table's end and its job's head, nothing else
    conn = sqlite3.connect(db)
    heads = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'run_heads'").fetchone()
    plan = " ".join(
        str(row[-1])
        for row in conn.execute(f"EXPLAIN QUERY PLAN {_RETAINED_RUNS}", (1, 1, 100, 1, "a"))
    )
    conn.close()
    assert "job_no INTEGER PRIMARY KEY" in heads[0]  # heads by job number: side by side
    # A job's runs are read by following its chain: rowid look-ups, no scan of the runs.
    assert "SCAN r" not in plan and "SCAN runs" not in plan, plan
    assert "INTEGER PRIMARY KEY" in plan


def test_jobs_are_numbered_in_the_order_they_first_record_runs(tmp_path: Path) -> None:
    db = tmp_path / "scheduler.db"
    repo = SqliteRunRepository(db)
    ids = ["zeta", "alpha", "mu"]  # not in key order
    repo.record_many([("alice", _run(0).model_copy(update={"job_id": j})) for j in ids])
    repo.record_many([("alice", _run(1).model_copy(update={"job_id": j})) for j in ids])
    conn = sqlite3.connect(db)
    numbered = conn.execute("SELECT job_id FROM job_numbers ORDER BY job_no").fetchall()
    conn.close()
    assert [row[0] for row in numbered] == ids
    assert [len(repo.list("alice", j).items) for j in ids] == [2, 2, 2]


_EARLIER_LAYOUTS = {
    "rowid table, two indexes": """CREATE TABLE runs (owner_id TEXT NOT NULL,
           job_id TEXT NOT NULL, run_id TEXT NOT NULL, started_at TEXT NOT NULL,
           data TEXT NOT NULL, PRIMARY KEY (owner_id, job_id, run_id));
       CREATE INDEX runs_by_start ON runs (owner_id, job_id, started_at, run_id);""",
    "keyed by job": """CREATE TABLE runs (owner_id TEXT NOT NULL, job_id TEXT NOT NULL,
           run_id TEXT NOT NULL, started_at TEXT NOT NULL, data TEXT NOT NULL,
           PRIMARY KEY (owner_id, job_id, started_at, run_id)) WITHOUT ROWID;""",
    "rowid table, index by job": """CREATE TABLE runs (owner_id TEXT NOT NULL,
           job_id TEXT NOT NULL, run_id TEXT NOT NULL, started_at TEXT NOT NULL,
           data TEXT NOT NULL);
       CREATE UNIQUE INDEX runs_by_job ON runs (owner_id, job_id, started_at, run_id);""",
    "rowid table, index by job number": """CREATE TABLE runs (owner_id TEXT NOT NULL,
           job_id TEXT NOT NULL, run_id TEXT NOT NULL, started_at TEXT NOT NULL,
           data TEXT NOT NULL, job_no INTEGER);
       CREATE UNIQUE INDEX runs_by_number ON runs (job_no, started_at, run_id);
       CREATE TABLE job_numbers (job_no INTEGER PRIMARY KEY, job_id TEXT NOT NULL UNIQUE);
       INSERT INTO job_numbers VALUES (7, 'j1');""",
}


@pytest.mark.parametrize("layout", sorted(_EARLIER_LAYOUTS))
def test_file_with_an_earlier_runs_layout_gets_chains(tmp_path: Path, layout: str) -> None:
    db = tmp_path / "scheduler.db"
    conn = sqlite3.connect(db)
    conn.executescript(_EARLIER_LAYOUTS[layout])
    earlier = [_run(minute) for minute in (2, 0)]  # stored in another order than started
    conn.executemany(
        "INSERT INTO runs (owner_id, job_id, run_id, started_at, data) VALUES (?, ?, ?, ?, ?)",
        [("alice", r.job_id, r.run_id, _ts(r.started_at), r.model_dump_json()) for r in earlier],
    )
    if "job_no" in _EARLIER_LAYOUTS[layout]:
        conn.execute("UPDATE runs SET job_no = 7")
    conn.commit()
    conn.close()
    repo = SqliteRunRepository(db, retention=3)
    table, indexes = _layout(db)
    assert indexes == [] and "seq INTEGER" in table
    assert [r.fire_id for r in repo.list("alice", "j1").items] == ["f2", "f0"]
    assert repo.list("bob", "j1").items == []  # still the owner's alone
    for minute in [5, 1, 4]:
        repo.record("alice", _run(minute))
    # The last 3 recorded are kept (f5, f1, f4: f2 and f0 were recorded first), newest first.
    assert [r.fire_id for r in repo.list("alice", "j1").items] == ["f5", "f4", "f1"]
    again = repo.list("alice", "j1").items[2].model_copy(update={"summary": "again"})
    repo.record("alice", again)  # started before the newest: found on the chain, replaced
    listed = repo.list("alice", "j1").items
    assert [(r.fire_id, r.summary) for r in listed] == [("f5", ""), ("f4", ""), ("f1", "again")]
    SqliteRunRepository(db)  # opening the upgraded file again changes nothing
    assert repo.list("alice", "j1").items == listed


def test_run_recorded_again_is_replaced(tmp_path: Path) -> None:
    repo = SqliteRunRepository(tmp_path / "scheduler.db")
    run = _run(1)
    repo.record("alice", run)
    repo.record("alice", run.model_copy(update={"status": "error", "summary": "again"}))
    items = repo.list("alice", "j1").items
    assert [(r.run_id, r.status, r.summary) for r in items] == [(run.run_id, "error", "again")]


def test_direct_consumer_call_behaves_like_pluggy() -> None:
    import pluggy
    import pytest

    from serverless_scheduler_common.runtime.core import _direct

    spec = pluggy.HookspecMarker("t")
    impl = pluggy.HookimplMarker("t")

    class Spec:
        @spec(firstresult=True)
        def handle(self, job: object, fired: object, context: object) -> object: ...

    calls: list[str] = []

    class Plain:
        @impl
        def handle(self, fired: object, job: object) -> object:  # a subset, other order
            calls.append("plain")
            if fired == "boom":
                raise RuntimeError("boom")
            return (job, fired)

    class Wrapping:
        @impl(wrapper=True)
        def handle(self) -> object:
            calls.append("wrapper")
            return (yield)

    class Full:
        @impl
        def handle(self, context: object, job: object, fired: object) -> object:
            return (job, fired, context)

    full = pluggy.PluginManager("t")
    full.add_hookspecs(Spec)
    full.register(Full())
    every = _direct(full.hook.handle)  # takes every argument: the function itself
    assert every(job="j", fired="f", context="c") == ("j", "f", "c")
    assert every(job="j", fired="f", context="c") == full.hook.handle(
        job="j", fired="f", context="c"
    )

    pm = pluggy.PluginManager("t")
    pm.add_hookspecs(Spec)
    pm.register(Plain())
    direct = _direct(pm.hook.handle)
    assert direct is not pm.hook.handle
    assert direct(job="j", fired="f", context=None) == pm.hook.handle(
        job="j", fired="f", context=None
    )
    with pytest.raises(RuntimeError, match="boom"):
        direct(job="j", fired="boom", context=None)
    pm.register(Wrapping())
    assert _direct(pm.hook.handle) is pm.hook.handle  # wrappers keep pluggy's call
    calls.clear()
    pm.hook.handle(job="j", fired="f", context=None)
    assert calls == ["wrapper", "plain"]


@pytest.mark.parametrize("sole_marker", [False, True], ids=["plain", "sole-marker"])
def test_done_marks_are_looked_up_by_their_key(tmp_path: Path, sole_marker: bool) -> None:
    db = tmp_path / "scheduler.db"
    ledger = SqliteFireLedger(db, sole_marker=sole_marker)
    done = ["j2@2026-01-01T00:00:00Z", "j1@2026-01-01T00:01:00Z", "plain-id"]
    ledger.mark_done_many([*done, "j1@2026-01-01T00:00:00Z"])
    seen: list[str] = []
    ledger._conn.set_trace_callback(seen.append)
    asked = [*done, "j1@2026-01-01T00:02:00Z", "j3@2026-01-01T00:00:00Z", "other"]
    assert ledger.done_among(asked) == set(done)
    ledger._conn.set_trace_callback(None)
    lookups = [sql for sql in seen if "fires_done" in sql or "done_recent" in sql]
    # The timed fires in their jobs' rows, the others (a fire id of no job) as rows.
    assert {"fires_done" in sql for sql in lookups} == {True, False}
    conn = sqlite3.connect(db)
    try:
        for sql in lookups:
            plan = [str(row[-1]) for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}")]
            assert not any(step.startswith("SCAN d") for step in plan), plan  # no table scan
            assert any("PRIMARY KEY" in step for step in plan), plan
    finally:
        conn.close()
