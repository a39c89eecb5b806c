"""Local mode composition root: one process serves the API and runs the scheduler."""

from __future__ import annotations

import logging
from pathlib import Path

from serverless_scheduler_common import Settings

log = logging.getLogger(__name__)


def serve(
    *, host: str | None, port: int | None, data_dir: str | None, log_json: bool = False
) -> int:
    import uvicorn

    from serverless_scheduler_items.app import create_app

    overrides: dict[str, object] = {}
    if host:
        overrides["host"] = host
    if port:
        overrides["port"] = port
    if data_dir:
        overrides["data_dir"] = Path(data_dir)
    settings = Settings(**overrides)  # type: ignore[arg-type]
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    app = create_app(settings=settings)
    print(f"Serverless Scheduler local mode: http://{settings.host}:{settings.port}/", flush=True)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="info")
    return 0
