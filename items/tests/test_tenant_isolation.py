"""Tenant isolation: another user's job is indistinguishable from a missing one."""

from __future__ import annotations

from typing import Any

JOBS = "/api/v1/jobs"


def test_user_b_cannot_see_change_run_or_delete_user_as_job(api: Any) -> None:
    job = api.create("alice", name="alice's", token="alice-secret")
    url = f"{JOBS}/{job['job_id']}"
    bob = api.auth("bob")
    api.create("bob", name="bob's")

    assert api.client.get(url, headers=bob).status_code == 404
    put = api.client.put(url, json={**job, "name": "hijacked"}, headers=bob)
    assert put.status_code == 404
    assert api.client.put(url, json=job, headers={**bob, "If-Match": '"1"'}).status_code == 404
    assert api.client.post(f"{url}/run", headers=bob).status_code == 404
    assert api.client.get(f"{url}/runs", headers=bob).status_code == 404
    assert api.client.get(f"{url}/changes", headers=bob).status_code == 404
    assert api.client.delete(url, headers=bob).status_code == 404
    assert api.client.delete(url, headers={**bob, "If-Match": '"1"'}).status_code == 404

    listed = api.client.get(JOBS, headers=bob).json()
    assert [j["name"] for j in listed["items"]] == ["bob's"]
    # The 404 for someone else's job reads exactly like the one for a missing job.
    missing = api.client.get(f"{JOBS}/00000000000000000000000000", headers=bob)
    other = api.client.get(url, headers=bob)
    assert other.json()["detail"].replace(job["job_id"], "X") == missing.json()["detail"].replace(
        "00000000000000000000000000", "X"
    )

    # Alice's job is untouched and nothing was published for it.
    mine = api.client.get(url, headers=api.auth("alice"))
    assert mine.status_code == 200
    assert mine.json()["name"] == "alice's"
    assert mine.json()["version"] == 1
    assert api.publisher.fired == []
    assert api.repo.get("alice", job["job_id"])["token"] == "alice-secret"


def test_a_cursor_from_one_user_does_not_open_anothers_jobs(api: Any) -> None:
    for i in range(3):
        api.create("alice", name=f"a{i}")
    page = api.client.get(f"{JOBS}?limit=1", headers=api.auth("alice")).json()
    assert page["next_cursor"]
    bob_view = api.client.get(f"{JOBS}?cursor={page['next_cursor']}", headers=api.auth("bob"))
    assert bob_view.status_code == 200
    assert bob_view.json()["items"] == []


def test_a_creating_user_cannot_claim_another_owner(api: Any) -> None:
    job = api.create("bob", owner_id="alice")
    assert job["owner_id"] == "bob"
    assert api.client.get(JOBS, headers=api.auth("alice")).json()["items"] == []
