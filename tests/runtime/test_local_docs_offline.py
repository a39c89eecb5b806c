"""Local mode's API docs page needs no CDN: Swagger UI's files come from the server."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from serverless_scheduler.local import build_local_system
from serverless_scheduler_common import Settings


def test_local_mode_serves_the_docs_page_and_its_scripts_itself(tmp_path: Path) -> None:
    system = build_local_system(Settings(data_dir=tmp_path, dispatcher_process=False))
    client = TestClient(system.app)
    page = client.get("/api/v1/docs")
    assert page.status_code == 200
    assert "cdn." not in page.text
    for name in ("swagger-ui-bundle.js", "swagger-ui.css"):
        url = f"/api/v1/docs-assets/{name}"
        assert url in page.text
        asset = client.get(url)
        assert asset.status_code == 200 and len(asset.content) > 10_000, name
