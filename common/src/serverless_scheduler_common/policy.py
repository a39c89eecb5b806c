"""Per-job run policy: overlap handling, catch-up after downtime, auto-pause."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

#: The default catch-up window is one period of the schedule, but never more than this.
CATCHUP_CAP_S = 86_400
#: The longest catch-up window a job may set: no fire older than this is ever fired.
MAX_CATCHUP_WINDOW_S = 7 * 86_400


class JobPolicy(BaseModel):
    """How the platform treats fires of one job (Temporal Schedules is the model)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    overlap: Literal["skip", "buffer_one", "allow_all"] = Field(
        default="skip",
        description=(
            "A fire while the previous run is still going: 'skip' records it as skipped, "
            "'buffer_one' queues at most one, 'allow_all' runs them concurrently."
        ),
    )
    catchup_window_s: int | None = Field(
        default=None,
        ge=0,
        le=MAX_CATCHUP_WINDOW_S,
        description=(
            "How old a missed fire may be and still run after downtime; "
            "default: one period of the schedule, capped at one day."
        ),
    )
    pause_after_failures: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        description="Disable the job after this many consecutive error runs (default: off).",
    )

    def effective_catchup_window_s(self, period_s: int) -> int:
        """The catch-up window in force for a schedule with the given period."""
        if self.catchup_window_s is not None:
            return self.catchup_window_s
        return min(max(period_s, 60), CATCHUP_CAP_S)
