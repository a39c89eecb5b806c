"""A seed-style plugin: only a `plugin_export` module with the two dicts."""

from __future__ import annotations

from typing import Literal

from serverless_scheduler_common import ScheduledJob


class SeedAlgorithmJob(ScheduledJob):
    job_type: Literal["seed_algorithm_job"] = "seed_algorithm_job"
    algorithm: str


ENUM_MAPPING = {"SeedAlgorithmJob": "seed_algorithm_job"}
CLASS_MAPPING = {"seed_algorithm_job": SeedAlgorithmJob}
