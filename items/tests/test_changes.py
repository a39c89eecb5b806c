"""`GET /jobs/{id}/changes`: a job's change history, as its plugin keeps it in the state
store, behind the same auth and tenant isolation as the runs."""

from __future__ import annotations

import re
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest
from fastapi.testclient import TestClient

from serverless_scheduler_common import JobTypeRegistry, ScheduledJob, Settings, hookimpl
from serverless_scheduler_common.plugins import get_plugin_manager
from serverless_scheduler_common.ports import StateStore
from serverless_scheduler_common.state import SqliteStateStore
from serverless_scheduler_items.app import create_app
from serverless_scheduler_items.auth import SqliteTokenStore
from serverless_scheduler_items.sqlite_repository import SqliteJobRepository

NAMESPACE = "probe_history"
PLUGIN_GUIDE = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"


class ProbeHistoryPlugin:
    """Keeps a history for `probe_job`, with a secret the API must not pass on."""

    @hookimpl
    def serverless_scheduler_change_history(
        self, owner_id: str, job_id: str, job_type: str, state: StateStore, limit: int
    ) -> list[dict[str, Any]] | None:
        if job_type != "probe_job":
            return None
        return [
            {**entry, "notify": ["mailto://secret@example.com"]}
            for entry in state.history(NAMESPACE, f"{owner_id}/{job_id}", limit=limit)
        ]


@dataclass
class ChangesApi:
    client: TestClient
    tokens: SqliteTokenStore
    state: SqliteStateStore

    def auth(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens.create(user)}"}

    def create(self, headers: dict[str, str]) -> str:
        body = {
            "job_type": "probe_job",
            "name": "probe",
            "schedule": {"kind": "rate", "every": 5, "unit": "minutes"},
        }
        response = self.client.post("/api/v1/jobs", json=body, headers=headers)
        assert response.status_code == 201, response.text
        job_id: str = response.json()["job_id"]
        return job_id


def _changes_api(
    tmp_path: Path, registry: JobTypeRegistry, *, plugins: list[object], with_state: bool = True
) -> ChangesApi:
    db = tmp_path / "scheduler.db"
    tokens = SqliteTokenStore(db)
    state = SqliteStateStore(db)
    app = create_app(
        settings=Settings(data_dir=tmp_path),
        repo=SqliteJobRepository(db),
        state=state if with_state else None,
        authenticator=tokens,
        registry=registry,
        plugin_manager=get_plugin_manager(plugins=plugins, load_entrypoints=False),
        static_dir=tmp_path / "no-ui",
    )
    return ChangesApi(TestClient(app), tokens, state)


@pytest.fixture
def changes_api(tmp_path: Path, registry: JobTypeRegistry) -> ChangesApi:
    return _changes_api(tmp_path, registry, plugins=[ProbeHistoryPlugin()])


def _record(state: StateStore, owner: str, job_id: str, n: int) -> None:
    state.append_history(
        NAMESPACE,
        f"{owner}/{job_id}",
        {
            "at": f"2025-01-06T09:{n:02d}:00+00:00",
            "fire_id": f"{job_id}@{n}",
            "summary": f"changed (+{n}/-1 lines)",
            "added": n,
            "removed": 1,
            "diff": f"@@ -1 +1 @@\n-old {n}\n+new {n}\n",
        },
        keep=50,
    )


def test_changes_come_newest_first_without_anything_but_the_documented_fields(
    changes_api: ChangesApi,
) -> None:
    alice = changes_api.auth("alice")
    job_id = changes_api.create(alice)
    for n in range(1, 4):
        _record(changes_api.state, "alice", job_id, n)

    response = changes_api.client.get(f"/api/v1/jobs/{job_id}/changes", headers=alice)
    assert response.status_code == 200, response.text
    page = response.json()
    assert page["supported"] is True
    assert [c["fire_id"] for c in page["items"]] == [f"{job_id}@{n}" for n in (3, 2, 1)]
    assert page["items"][0] == {
        "at": "2025-01-06T09:03:00Z",
        "fire_id": f"{job_id}@3",
        "summary": "changed (+3/-1 lines)",
        "added": 3,
        "removed": 1,
        "diff": "@@ -1 +1 @@\n-old 3\n+new 3\n",
    }
    assert "secret@example.com" not in response.text

    limited = changes_api.client.get(f"/api/v1/jobs/{job_id}/changes?limit=2", headers=alice)
    assert [c["fire_id"] for c in limited.json()["items"]] == [f"{job_id}@3", f"{job_id}@2"]


def test_an_entry_that_does_not_read_as_a_change_is_left_out_not_a_500(
    changes_api: ChangesApi,
) -> None:
    alice = changes_api.auth("alice")
    job_id = changes_api.create(alice)
    _record(changes_api.state, "alice", job_id, 1)
    changes_api.state.append_history(
        NAMESPACE, f"alice/{job_id}", {"at": "not a time", "added": "many"}, keep=50
    )
    response = changes_api.client.get(f"/api/v1/jobs/{job_id}/changes", headers=alice)
    assert response.status_code == 200, response.text
    assert [c["fire_id"] for c in response.json()["items"]] == [f"{job_id}@1"]


def test_another_users_job_is_404_like_a_missing_one(changes_api: ChangesApi) -> None:
    alice, bob = changes_api.auth("alice"), changes_api.auth("bob")
    job_id = changes_api.create(alice)
    _record(changes_api.state, "alice", job_id, 1)
    # Bob's own history under the same job id must not open Alice's job either.
    _record(changes_api.state, "bob", job_id, 2)

    theirs = changes_api.client.get(f"/api/v1/jobs/{job_id}/changes", headers=bob)
    missing = changes_api.client.get("/api/v1/jobs/nosuchjob/changes", headers=bob)
    assert theirs.status_code == missing.status_code == 404
    assert "new 1" not in theirs.text and "new 2" not in theirs.text
    assert theirs.json() == {"detail": f"job {job_id!r} not found"}
    anonymous = changes_api.client.get(f"/api/v1/jobs/{job_id}/changes")
    assert anonymous.status_code == 401


@pytest.mark.parametrize("limit", ["0", "201", "many", "-1"])
def test_a_bad_limit_is_a_422_naming_it(changes_api: ChangesApi, limit: str) -> None:
    alice = changes_api.auth("alice")
    job_id = changes_api.create(alice)
    response = changes_api.client.get(f"/api/v1/jobs/{job_id}/changes?limit={limit}", headers=alice)
    assert response.status_code == 422
    assert [e["loc"] for e in response.json()["detail"]] == [["query", "limit"]]


def test_without_a_state_store_the_route_is_503(tmp_path: Path, registry: JobTypeRegistry) -> None:
    api = _changes_api(tmp_path, registry, plugins=[ProbeHistoryPlugin()], with_state=False)
    alice = api.auth("alice")
    job_id = api.create(alice)
    response = api.client.get(f"/api/v1/jobs/{job_id}/changes", headers=alice)
    assert response.status_code == 503
    assert "state store" in response.json()["detail"]
    # A job the caller cannot see stays a 404: the 503 says nothing about other jobs.
    assert api.client.get("/api/v1/jobs/nosuchjob/changes", headers=alice).status_code == 404


def test_a_job_type_without_history_is_an_empty_unsupported_list(
    tmp_path: Path, registry: JobTypeRegistry
) -> None:
    api = _changes_api(tmp_path, registry, plugins=[])
    alice = api.auth("alice")
    job_id = api.create(alice)
    response = api.client.get(f"/api/v1/jobs/{job_id}/changes", headers=alice)
    assert response.status_code == 200
    assert response.json() == {"items": [], "supported": False}


def test_the_route_is_in_the_openapi_document(changes_api: ChangesApi) -> None:
    doc = changes_api.client.get("/api/v1/openapi.json").json()
    operation = doc["paths"]["/api/v1/jobs/{job_id}/changes"]["get"]
    assert {"200", "401", "404", "422", "503"} <= set(operation["responses"])


class ExampleJob(ScheduledJob):
    job_type: Literal["example_job"] = "example_job"


def test_the_plugin_guides_sample_serves_its_history_through_the_api(tmp_path: Path) -> None:
    """docs/plugins.md's `serverless_scheduler_change_history` sample, run as written."""
    text = PLUGIN_GUIDE.read_text(encoding="utf-8")
    [block] = [
        b
        for b in re.findall(r"^```python\n(.*?)^```", text, re.DOTALL | re.MULTILINE)
        if "def serverless_scheduler_change_history" in b
    ]
    sample = types.ModuleType("plugins_md_change_history")
    exec(compile(block, "docs/plugins.md (change history)", "exec"), sample.__dict__)
    registry = JobTypeRegistry()
    registry.add(ExampleJob, plugin="docs-sample")
    api = _changes_api(tmp_path, registry, plugins=[sample])
    alice = api.auth("alice")
    body = {"job_type": "example_job", "name": "ex", "schedule": {"kind": "rate", "every": 5}}
    job_id = api.client.post("/api/v1/jobs", json=body, headers=alice).json()["job_id"]
    entry = {"at": "2025-01-06T09:00:00+00:00", "added": 2, "removed": 0, "diff": "+a\n+b\n"}
    api.state.append_history("example", f"alice/{job_id}", entry, keep=50)

    page = api.client.get(f"/api/v1/jobs/{job_id}/changes", headers=alice).json()
    assert page == {
        "supported": True,
        "items": [
            {
                "at": "2025-01-06T09:00:00Z",
                "fire_id": None,
                "summary": "changed (+2/-0 lines)",
                "added": 2,
                "removed": 0,
                "diff": "+a\n+b\n",
            }
        ],
    }
