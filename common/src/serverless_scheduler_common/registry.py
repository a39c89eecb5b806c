"""The job-type registry: which job_type string maps to which pydantic class."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any, get_args

from pydantic import ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from .errors import DuplicateJobTypeError, PluginError
from .job import WRITE_CONTEXT, ScheduledJob


def job_type_of(cls: type[ScheduledJob]) -> str:
    """The job_type string a class pins (its `Literal` default)."""
    field = cls.model_fields.get("job_type")
    default = field.default if field else None
    if not isinstance(default, str) or not default:
        raise PluginError(f"{cls.__qualname__} must pin job_type with a Literal default")
    literal = get_args(field.annotation) if field else ()
    if literal and default not in literal:
        raise PluginError(f"{cls.__qualname__}: job_type default is not its Literal value")
    return default


class JobTypeRegistry:
    """Collects job classes from plugins and exposes the seed's mappings."""

    def __init__(self) -> None:
        self._classes: dict[str, type[ScheduledJob]] = {}
        self._owners: dict[str, str] = {}
        self._current_plugin = "<direct>"

    def add(self, cls: type[ScheduledJob], *, plugin: str | None = None) -> None:
        """Register one job class; a job_type already taken raises naming both owners."""
        if not (isinstance(cls, type) and issubclass(cls, ScheduledJob)):
            raise PluginError(f"{cls!r} is not a ScheduledJob subclass")
        job_type = job_type_of(cls)
        owner = plugin or self._current_plugin
        if job_type in self._classes and self._classes[job_type] is not cls:
            raise DuplicateJobTypeError(
                f"job_type {job_type!r} is registered twice: by plugin "
                f"{self._owners[job_type]!r} ({self._classes[job_type].__qualname__}) and "
                f"by plugin {owner!r} ({cls.__qualname__})"
            )
        self._classes[job_type] = cls
        self._owners[job_type] = owner

    def add_mappings(
        self,
        enum_mapping: Mapping[str, str],
        class_mapping: Mapping[str, type[ScheduledJob]],
        *,
        plugin: str | None = None,
    ) -> None:
        """Register a seed-style `plugin_export` (ENUM_MAPPING + CLASS_MAPPING)."""
        for name, job_type in enum_mapping.items():
            if job_type not in class_mapping:
                raise PluginError(f"ENUM_MAPPING[{name!r}] = {job_type!r} has no CLASS_MAPPING")
        for job_type, cls in class_mapping.items():
            if job_type_of(cls) != job_type:
                raise PluginError(
                    f"CLASS_MAPPING[{job_type!r}] is {cls.__qualname__}, whose job_type "
                    f"is {job_type_of(cls)!r}"
                )
            self.add(cls, plugin=plugin)

    # -- the seed's contract -------------------------------------------------------------
    @property
    def ENUM_MAPPING(self) -> dict[str, str]:
        return {cls.__name__: jt for jt, cls in self._classes.items()}

    @property
    def CLASS_MAPPING(self) -> dict[str, type[ScheduledJob]]:
        return dict(self._classes)

    @property
    def JobType(self) -> type[enum.StrEnum]:
        return enum.StrEnum("JobType", self.ENUM_MAPPING)  # type: ignore[return-value]

    # -- lookups ---------------------------------------------------------------------------
    def known(self) -> list[str]:
        return sorted(self._classes)

    def owner_of(self, job_type: str) -> str:
        return self._owners[job_type]

    def get(self, job_type: str) -> type[ScheduledJob]:
        try:
            return self._classes[job_type]
        except KeyError:
            raise unknown_job_type_error(job_type, self.known()) from None

    def __contains__(self, job_type: object) -> bool:
        return job_type in self._classes

    def __len__(self) -> int:
        return len(self._classes)

    def parse_job(self, data: Mapping[str, Any], *, write: bool = False) -> ScheduledJob:
        """Validate `data` into the class its `job_type` names; `write` for a create or
        update through the API (validators may hold those to rules stored jobs are
        not held to: `job.is_write`)."""
        job_type = data.get("job_type") if isinstance(data, Mapping) else None
        if not isinstance(job_type, str) or job_type not in self._classes:
            raise unknown_job_type_error(job_type, self.known())
        context = WRITE_CONTEXT if write else None
        return self._classes[job_type].model_validate(dict(data), context=context)


def unknown_job_type_error(job_type: object, known: list[str]) -> ValidationError:
    """A pydantic ValidationError on field `job_type` that lists the known types."""
    kinds = ", ".join(known) if known else "(none installed)"
    error = PydanticCustomError(
        "unknown_job_type",
        "unknown job_type {job_type}; known job types: {known}",
        {"job_type": repr(job_type), "known": kinds},
    )
    if job_type is None:
        error = PydanticCustomError(
            "missing", "Field required; known job types: {known}", {"known": kinds}
        )
    detail = InitErrorDetails(
        type=error,
        loc=("job_type",),
        input=job_type,
    )
    return ValidationError.from_exception_data("ScheduledJob", [detail])
