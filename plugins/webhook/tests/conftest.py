"""The platform's `fire_job` fixture: one fire through the real runtime."""

from __future__ import annotations

from serverless_scheduler_common.testing import fire_job

__all__ = ["fire_job"]
