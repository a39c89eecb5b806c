"""The FastAPI application (served by uvicorn locally and by Mangum on Lambda)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI
from serverless_scheduler_common import Settings, default_registry


def create_app(*, settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    app = FastAPI(
        title="Serverless Scheduler",
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
    )
    api = APIRouter(prefix="/api/v1")

    @api.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @api.get("/job_types")
    def job_types() -> dict[str, Any]:
        registry = default_registry()
        return {
            "items": [
                {"job_type": jt, "schema": registry.get(jt).model_json_schema()}
                for jt in registry.known()
            ]
        }

    app.include_router(api)
    return app
