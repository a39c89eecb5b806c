"""Events that cross service boundaries: `JobChange`, `JobFired` and `JobRemoved`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

M = TypeVar("M", bound=BaseModel)
_FIELDS: dict[type[BaseModel], frozenset[str]] = {}

# The setters of the instance slots every pydantic model has (`__dict__` and three
# more), taken from `BaseModel` once: calling a slot's setter costs about a third of
# `object.__setattr__(obj, name, value)`, which looks the name up each time.
_new_object = object.__new__
_set_dict = vars(BaseModel)["__dict__"].__set__
_set_fields_set = vars(BaseModel)["__pydantic_fields_set__"].__set__
_set_extra = vars(BaseModel)["__pydantic_extra__"].__set__
_set_private = vars(BaseModel)["__pydantic_private__"].__set__


def build_unchecked(model: type[M], data: dict[str, Any]) -> M:
    """An instance of `model` from values that are already valid, every field given.

    For hot paths only (a fire, a run): `model_construct` without its per-field default
    handling, which costs more than the rest of the work on a fire. `data` becomes the
    instance's `__dict__`.
    """
    fields = _FIELDS.get(model)
    if fields is None:
        fields = _FIELDS[model] = frozenset(model.model_fields)
    obj = _new_object(model)
    _set_dict(obj, data)
    _set_fields_set(obj, set(fields))
    _set_extra(obj, None)
    _set_private(obj, None)
    return obj


def fire_key(job_id: str, scheduled_time: datetime) -> str:
    """Stable key of one fire: the same job and scheduled time give the same key."""
    return f"{job_id}@{scheduled_time.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"


class JobChange(BaseModel):
    """One committed change of a job (from the DynamoDB stream or the SQLite outbox)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["insert", "modify", "remove"]
    owner_id: str
    job_id: str
    version: int = Field(
        ge=0, description="Version of the job after (or, for remove, at) the change."
    )
    old: dict[str, Any] | None = None
    new: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _images_match_kind(self) -> JobChange:
        if self.kind in ("insert", "modify") and self.new is None:
            raise ValueError(f"a {self.kind} change needs the new image")
        return self


class JobFired(BaseModel):
    """A job's fire, as published to the distribution topic and handed to consumers.

    `job_type` sits at the top level so SNS can filter on the message body.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    job_type: str
    job_id: str
    owner_id: str
    scheduled_time: AwareDatetime
    job: dict[str, Any] = Field(description="Snapshot of the job when the fire was scheduled.")
    # Derived from the validated fields when absent (an EventBridge schedule's `Input`
    # has none): a default factory runs only then, where a model validator was a Python
    # call for every fire read (about 0.2 us).
    fire_id: str = Field(
        default_factory=lambda data: fire_key(data["job_id"], data["scheduled_time"]),
        min_length=1,
        description="job_id + scheduled_time; derived when absent.",
    )
    manual: bool = Field(default=False, description="True for 'run now' fires.")


class JobRemoved(BaseModel):
    """A job was deleted: its plugin may forget the state it keeps for it.

    On AWS the sync Lambda publishes this to the distribution topic when it applies a
    removal; `job_type` at the top level routes it through the same subscription
    filters as the job's fires, and the consumer runtime calls the owning plugin's
    `serverless_scheduler_forget_job` instead of running anything.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    event: Literal["job_removed"] = "job_removed"
    job_type: str
    job_id: str
    owner_id: str
    version: int = Field(ge=0, description="Version of the job when it was deleted.")

    @classmethod
    def of(cls, change: JobChange) -> JobRemoved | None:
        """The notice of a removal change (None when its last image names no job_type,
        so no plugin could be told)."""
        job_type = (change.old or {}).get("job_type")
        if change.kind != "remove" or not isinstance(job_type, str):
            return None
        return cls(
            job_type=job_type,
            job_id=change.job_id,
            owner_id=change.owner_id,
            version=change.version,
        )
