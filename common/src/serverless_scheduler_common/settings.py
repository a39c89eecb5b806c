"""The one settings class: environment variables prefixed `SCHEDULER_`.

Nothing else in the project reads `os.environ`.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """Process-wide configuration; every field maps to `SCHEDULER_<FIELD>`."""

    model_config = SettingsConfigDict(env_prefix="SCHEDULER_", extra="ignore")

    # -- local mode --------------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    data_dir: Path = Path(".data")
    log_json: bool = False
    log_level: str = "INFO"

    # -- plugins -------------------------------------------------------------------------
    blocked_plugins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    trace_hooks: bool = False

    # -- safety --------------------------------------------------------------------------
    allow_private_networks: bool = Field(
        default=False,
        description="Let plugins fetch loopback/private/link-local addresses (tests, operators).",
    )
    trusted_networks: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="CIDRs plugins and notifications may reach although private (one "
        "internal host or relay; narrower than allow_private_networks), comma-separated.",
    )
    http_timeout_s: float = Field(default=10.0, gt=0, le=120)
    http_max_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)
    http_max_redirects: int = Field(default=5, ge=0, le=20)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # -- runs ----------------------------------------------------------------------------
    runs_retention: int = Field(default=100, ge=1)
    max_attempts: int = Field(default=5, ge=1, le=50)
    retry_base_s: float = Field(
        default=2.0, gt=0, le=3600, description="First retry delay; doubles per attempt."
    )
    retry_max_s: float = Field(default=300.0, gt=0, le=86_400, description="Retry delay cap.")
    dead_letter_retention_days: float = Field(
        default=14,
        ge=0,
        le=3650,
        description=(
            "Local mode drops dead letters older than this (0 keeps them until redriven "
            "or purged); the deployment's SQS dead-letter queues keep 14 days."
        ),
    )
    run_lock_ttl_s: int = Field(
        default=900,
        ge=1,
        le=86_400,
        description="Expiry of a run's in-progress marker, so a crashed run never blocks a job.",
    )
    dispatcher_workers: int = Field(default=8, ge=1, le=256)
    dispatcher_process: bool = Field(
        default=True,
        description=(
            "Local mode: run the dispatcher (plugins, run history) in its own process, "
            "so the timer engine and the consumers do not share one interpreter lock."
        ),
    )
    dispatcher_processes: int = Field(
        default=1,
        ge=1,
        le=16,
        description=(
            "Local mode with `dispatcher_process`: how many dispatcher processes split the "
            "queued fires (by job, so a job's fires stay in one process). With more than "
            "one, each keeps its queue in a file of its own (`dispatch-<i>.db`) and its run "
            "history in another (`history-<i>.db`). Each adds about 50 MB; more than one "
            "pays off only past "
            "what one core handles (about 20,000 no-op fires per second)."
        ),
    )

    # -- AWS (names injected by Terraform) -----------------------------------------------
    aws_region: str | None = None
    jobs_table: str | None = None
    runs_table: str | None = None
    idempotency_table: str | None = None
    dead_letter_queue_url: str | None = None
    state_table: str | None = None
    state_bucket: str | None = None
    topic_arn: str | None = None
    schedule_group: str | None = None
    scheduler_role_arn: str | None = None
    scheduler_dlq_arn: str | None = None

    @field_validator("blocked_plugins", "cors_origins", "trusted_networks", mode="before")
    @classmethod
    def _csv(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("trusted_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for net in value:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError as exc:
                raise ValueError(f"trusted_networks: {net!r} is not a network (CIDR)") from exc
        return value

    @property
    def dead_letter_retention_s(self) -> float | None:
        """`dead_letter_retention_days` in seconds (None: kept until redriven or purged)."""
        days = self.dead_letter_retention_days
        return days * 86_400 if days > 0 else None
