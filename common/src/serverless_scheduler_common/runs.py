"""Run records: what happened when a fire was handled."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .ids import new_id

RunStatus = Literal["ok", "changed", "error", "skipped"]

#: Largest `detail` kept with a run (a diff, say); longer ones are cut with a marker.
MAX_DETAIL_CHARS = 64 * 1024


def cap_detail(text: str | None, limit: int = MAX_DETAIL_CHARS) -> str | None:
    if text is None or len(text) <= limit:
        return text
    return text[:limit] + f"\n... [truncated {len(text) - limit} characters]"


class RunOutcome(BaseModel):
    """What a plugin consumer returns for one fire."""

    model_config = ConfigDict(extra="forbid")

    status: RunStatus = "ok"
    summary: str = ""
    detail: str | None = None


class Run(BaseModel):
    """One recorded run of a job (the API's run shape)."""

    model_config = ConfigDict(extra="forbid")

    run_id: str = Field(default_factory=new_id)
    job_id: str
    fire_id: str
    scheduled_time: datetime
    started_at: datetime
    finished_at: datetime | None = None
    status: RunStatus
    summary: str = ""
    detail: str | None = None
