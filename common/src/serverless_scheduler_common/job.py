"""`ScheduledJob`: the base every plugin job type extends."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo

from .ids import new_id
from .policy import JobPolicy
from .schedule import Schedule

#: Fields the server owns; clients never set them.
SERVER_FIELDS = frozenset({"job_id", "owner_id", "created_at", "updated_at", "version"})
#: Fields common to every job that clients may set.
BASE_EDITABLE_FIELDS = frozenset({"job_type", "name", "schedule", "enabled", "policy"})


#: Validation context of a write through the API (`JobTypeRegistry.parse_job(...,
#: write=True)`): a validator may hold new writes to rules that jobs stored earlier, and
#: the snapshots their fires carry, are not held to (see `is_write`).
WRITE_CONTEXT: dict[str, bool] = {"write": True}


def is_write(info: ValidationInfo) -> bool:
    """Whether a field validator runs for a write through the API (not a stored job)."""
    return bool(info.context and info.context.get("write"))


def utcnow() -> datetime:
    return datetime.now(UTC)


class ScheduledJob(BaseModel):
    """A job that runs on a schedule. Plugins subclass it and pin `job_type`.

    A subclass declares `job_type: Literal["my_job"] = "my_job"` and its own fields;
    those fields sit at the top level of the job's JSON.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    #: Field names whose values are secrets: masked in API responses, never logged.
    secret_fields: ClassVar[frozenset[str]] = frozenset()

    job_id: str = Field(
        default_factory=new_id,
        pattern=r"^[0-9A-Za-z_-]{1,64}$",
        description="Server-assigned, URL-safe id, unique per owner.",
    )
    owner_id: str = Field(default="", max_length=256, description="Owner (tenant) of the job.")
    job_type: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200, description="Human-readable name.")
    schedule: Schedule
    policy: JobPolicy = Field(default_factory=JobPolicy)
    enabled: bool = True
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    version: int = Field(default=0, ge=0, description="+1 on every write.")

    def snapshot(self) -> dict[str, Any]:
        """The job as plain JSON-compatible data (what events and stores carry)."""
        return self.model_dump(mode="json")

    def editable_fields(self) -> frozenset[str]:
        """Names of the fields a client may set (base ones plus the type's own)."""
        return frozenset(type(self).model_fields) - SERVER_FIELDS
