"""Several dispatchers over one queue table: each takes the fires of its jobs' shard."""

from __future__ import annotations

import sqlite3
from collections import Counter
from typing import Any

import pytest

from serverless_scheduler_common.ports import FIRE_SHARDS, fire_shard, render_fire
from serverless_scheduler_common.runtime.dispatcher import LocalDispatcher
from serverless_scheduler_common.runtime.sqlite import SqliteFireQueue


def test_a_jobs_shard_is_stable_and_jobs_spread_over_the_shards() -> None:
    ids = [f"job-{i}" for i in range(2000)]
    shards = [fire_shard(job_id) for job_id in ids]
    assert shards == [fire_shard(job_id) for job_id in ids]  # the same in every call
    assert all(0 <= shard < FIRE_SHARDS for shard in shards)
    # Two or three dispatchers get a fair share each.
    for count in (2, 3):
        share = Counter(shard % count for shard in shards)
        assert min(share.values()) > 2000 / count * 0.85


def test_each_shard_reads_only_its_jobs_fires_in_queue_order(
    rig_factory: Any, make_job: Any, fire_of: Any
) -> None:
    rig = rig_factory()
    jobs = [make_job(f"j{i}") for i in range(40)]
    queue = SqliteFireQueue(rig.db)
    queue.add_many([fire_of(job, 0) for job in jobs])
    queue.add_payloads([render_fire(fire_of(job, 1)) for job in jobs])
    everything, high = queue.pending_window()
    seen: list[int] = []
    for index in range(3):
        items, shard_high = queue.pending_window(shard=(index, 3))
        assert shard_high == high
        assert [item.seq for item in items] == sorted(item.seq for item in items)
        for item in items:
            assert fire_shard(item.parsed().job_id) % 3 == index
        seen += [item.seq for item in items]
    assert sorted(seen) == [item.seq for item in everything]  # each row in one shard
    # `limit` and `after_seq` apply within the shard.
    first_two = queue.pending_window(shard=(1, 3), limit=2)[0]
    later = queue.pending_window(shard=(1, 3), after_seq=first_two[-1].seq)[0]
    assert [i.seq for i in first_two + later] == [
        i.seq for i in queue.pending_window(shard=(1, 3))[0]
    ]


@pytest.mark.parametrize("shard", [(2, 2), (-1, 2), (0, 0)])
def test_a_shard_outside_its_count_is_refused(rig_factory: Any, shard: tuple[int, int]) -> None:
    rig = rig_factory()
    with pytest.raises(ValueError, match="shard"):
        SqliteFireQueue(rig.db).pending_window(shard=shard)
    with pytest.raises(ValueError, match="shard"):
        LocalDispatcher(rig.runtime, SqliteFireQueue(rig.db), rig.dead, shard=shard)


def test_two_dispatchers_split_the_fires_by_job_and_run_each_once(
    rig_factory: Any, make_job: Any, fire_of: Any
) -> None:
    rigs = [rig_factory(), rig_factory()]  # two processes' worth, over one file
    jobs = [make_job(f"j{i}", policy={"overlap": "allow_all"}) for i in range(30)]
    fires = [fire_of(job, minute) for job in jobs for minute in range(3)]
    SqliteFireQueue(rigs[0].db).add_many(fires)
    for index, rig in enumerate(rigs):
        rig.dispatcher.shard = (index, 2)
        rig.dispatcher.start()
    for rig in rigs:
        assert rig.dispatcher.wait_idle(timeout=10)
    for index, rig in enumerate(rigs):
        assert rig.alpha.calls, "both dispatchers had fires to run"
        for job, _ in rig.alpha.seen:
            assert fire_shard(job.job_id) % 2 == index
    ran = rigs[0].alpha.calls + rigs[1].alpha.calls
    assert sorted(ran) == sorted(f.fire_id for f in fires)  # every fire once
    assert SqliteFireQueue(rigs[0].db).count() == 0


def test_a_shard_dispatcher_leaves_fires_it_publishes_for_their_own_shard(
    rig_factory: Any, make_job: Any, fire_of: Any
) -> None:
    rigs = [rig_factory(), rig_factory()]
    for index, rig in enumerate(rigs):
        rig.dispatcher.shard = (index, 2)
        rig.dispatcher.start()
    jobs = [make_job(f"p{i}") for i in range(12)]
    rigs[0].dispatcher.publish_many([fire_of(job) for job in jobs])
    for rig in rigs:
        rig.dispatcher.load_queued()  # the other one would find them at its next poll
    for rig in rigs:
        assert rig.dispatcher.wait_idle(timeout=10)
    for index, rig in enumerate(rigs):
        assert {job.job_id for job, _ in rig.alpha.seen} == {
            job.job_id for job in jobs if fire_shard(job.job_id) % 2 == index
        }


def test_interleaved_rows_are_dequeued_exactly(
    rig_factory: Any, make_job: Any, fire_of: Any
) -> None:
    rig = rig_factory()
    job = make_job()
    queue = SqliteFireQueue(rig.db)
    added = queue.add_many([fire_of(job, minute) for minute in range(300)])
    seqs = [item.seq for item in added]
    queue.complete(delete=seqs[::2])  # every other row: 150 single-row ranges
    assert [item.seq for item in queue.pending()] == seqs[1::2]
    queue.complete(delete=seqs[1:101:2] + seqs[201::2])  # short lists and a padded one
    assert [item.seq for item in queue.pending()] == seqs[101:201:2]
    queue.complete(delete=seqs)  # the rest, and rows already gone
    assert queue.count() == 0


def test_a_queue_table_of_an_earlier_version_gets_the_shard_column(
    rig_factory: Any, make_job: Any, fire_of: Any
) -> None:
    rig = rig_factory()
    old = fire_of(make_job("old"))
    with sqlite3.connect(rig.db) as conn:
        conn.execute("DROP TABLE dispatch_queue")
        conn.execute(
            """CREATE TABLE dispatch_queue (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                fire_id TEXT NOT NULL,
                payload TEXT NOT NULL,
                attempt INTEGER NOT NULL DEFAULT 1,
                not_before REAL NOT NULL DEFAULT 0
            )"""
        )
        conn.execute(
            "INSERT INTO dispatch_queue (fire_id, payload) VALUES (?, ?)",
            (old.fire_id, old.model_dump_json()),
        )
    queue = SqliteFireQueue(rig.db)
    new = fire_of(make_job("new"))
    queue.add_many([new])
    rows = dict(queue._query("SELECT fire_id, shard FROM dispatch_queue"))
    assert rows == {old.fire_id: 0, new.fire_id: fire_shard(new.job_id)}
    assert [i.fire_id for i in queue.pending_window(shard=(0, 1))[0]] == [
        old.fire_id,
        new.fire_id,
    ]
    SqliteFireQueue(rig.db)  # opening it again changes nothing
    assert len(queue._query("PRAGMA table_info(dispatch_queue)")) == 6


def test_the_kept_depth_is_the_number_of_rows(
    rig_factory: Any, make_job: Any, fire_of: Any
) -> None:
    rig = rig_factory()
    queue = SqliteFireQueue(rig.db)

    def rows() -> int:
        return int(str(queue._query("SELECT count(*) FROM dispatch_queue")[0][0]))

    jobs = [make_job(f"d{i}") for i in range(5)]
    added = queue.add_many([fire_of(job, m) for job in jobs for m in range(4)])
    assert queue.count() == rows() == 20
    assert queue.add_payloads([render_fire(fire_of(job, 9)) for job in jobs]) == 5
    assert queue.count() == rows() == 25
    seqs = [item.seq for item in added]
    queue.complete(delete=seqs[:6], reschedule=[(seqs[10], 2, 1e12)])
    queue.complete(delete=seqs[:8])  # six of them are gone already
    assert queue.count() == rows() == 17
    assert queue.count(due_by=1e9) == 16  # the rescheduled one is due later
    # Rows written behind the adapter's back are counted again when one opens the file.
    with sqlite3.connect(rig.db) as conn:
        conn.execute("DELETE FROM dispatch_queue WHERE seq > ?", (seqs[-1],))
    assert SqliteFireQueue(rig.db).count() == rows() == 12
