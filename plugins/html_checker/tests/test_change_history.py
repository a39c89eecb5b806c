"""The checker's `serverless_scheduler_change_history` hook: a monitor's changes as the
API shows them, from the history the checks stored."""

from __future__ import annotations

from typing import Any

import pytest

from serverless_scheduler_common import Settings
from serverless_scheduler_common.plugins import get_plugin_manager
from serverless_scheduler_html_checker.plugin import (
    NAMESPACE,
    HTMLMonitorJob,
    serverless_scheduler_change_history,
)


def _history(checker: Any, job: HTMLMonitorJob, limit: int = 50) -> Any:
    return serverless_scheduler_change_history(
        owner_id=job.owner_id,
        job_id=job.job_id,
        job_type=job.job_type,
        state=checker.store,
        limit=limit,
    )


def _page(price: int) -> str:
    return f"<html><body><h1>Shop</h1><p>Price: {price} EUR</p></body></html>"


def test_changes_come_newest_first_with_their_diffs_and_no_secrets(
    checker: Any, pages: Any
) -> None:
    secret_url = "json://user:s3cretpw@example.invalid/hook"
    job = checker.job(
        pages.set("/p", _page(1)),
        notify=[secret_url],
        headers={"Authorization": "Bearer hdr-s3cret-value"},
    )
    checker.run(job)  # baseline: no change
    assert _history(checker, job) == []
    fires = []
    for price in (2, 3, 4):
        pages.set("/p", _page(price))
        fires.append(checker.fired(job))
        assert checker.run(job, fires[-1]).status == "changed"

    changes = _history(checker, job)
    assert [c["fire_id"] for c in changes] == [f.fire_id for f in reversed(fires)]
    newest = changes[0]
    assert set(newest) == {"at", "fire_id", "summary", "added", "removed", "diff"}
    assert (newest["summary"], newest["added"], newest["removed"]) == (
        "changed (+1/-1 lines)",
        1,
        1,
    )
    assert "-Price: 3 EUR" in newest["diff"] and "+Price: 4 EUR" in newest["diff"]
    assert newest["at"].endswith("+00:00")
    assert "s3cretpw" not in repr(changes) and "hdr-s3cret" not in repr(changes)
    assert [c["fire_id"] for c in _history(checker, job, limit=2)] == [
        fires[2].fire_id,
        fires[1].fire_id,
    ]


def test_a_change_whose_notification_never_went_out_is_in_the_history(
    checker: Any, pages: Any
) -> None:
    job = checker.job(pages.set("/p", _page(1)))
    checker.run(job)
    pages.set("/p", _page(2))
    fired = checker.fired(job)
    checker.notifier.fail_next = 5
    for _ in range(3):  # every attempt of the fire fails to notify: its run is an error
        with pytest.raises(RuntimeError, match="notification service down"):
            checker.run(job, fired)
    [change] = _history(checker, job)
    assert change["fire_id"] == fired.fire_id
    assert "+Price: 2 EUR" in change["diff"]


def test_an_entry_appended_twice_by_a_retried_fire_is_listed_once(checker: Any, pages: Any) -> None:
    job = checker.job(pages.set("/p", _page(1)))
    checker.run(job)
    pages.set("/p", _page(2))
    checker.run(job)
    # A crash between appending the entry and storing the snapshot: the retry appends
    # the same fire's entry again.
    key = f"{job.owner_id}/{job.job_id}"
    [entry] = checker.store.history(NAMESPACE, key)
    checker.store.append_history(NAMESPACE, key, entry, keep=50)
    assert [c["fire_id"] for c in _history(checker, job)] == [entry["fire_id"]]


def test_other_job_types_are_not_answered(checker: Any) -> None:
    answer = serverless_scheduler_change_history(
        owner_id="alice", job_id="j1", job_type="webhook_job", state=checker.store, limit=50
    )
    assert answer is None


def test_the_hook_is_reached_through_the_plugin_manager(checker: Any, pages: Any) -> None:
    job = checker.job(pages.set("/p", _page(1)))
    checker.run(job)
    pages.set("/p", _page(2))
    checker.run(job)
    pm = get_plugin_manager(settings=Settings())
    changes = pm.hook.serverless_scheduler_change_history(
        owner_id=job.owner_id,
        job_id=job.job_id,
        job_type=job.job_type,
        state=checker.store,
        limit=10,
    )
    assert [c["summary"] for c in changes] == ["changed (+1/-1 lines)"]
    other = pm.hook.serverless_scheduler_change_history(
        owner_id="alice", job_id="j1", job_type="no_such_type", state=checker.store, limit=10
    )
    assert other is None
