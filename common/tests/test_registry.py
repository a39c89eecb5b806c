"""The pluggy plugin manager and the job-type registry."""

from __future__ import annotations

import sys
from pathlib import Path
from types import ModuleType
from typing import Literal

import pytest
from pydantic import ValidationError

from serverless_scheduler_common import (
    DuplicateJobTypeError,
    JobTypeRegistry,
    ScheduledJob,
    Settings,
    build_registry,
    get_plugin_manager,
    hookimpl,
    job_types_from_export,
)
from serverless_scheduler_common.errors import PluginError

sys.path.insert(0, str(Path(__file__).parent))
import seed_plugin_export

RATE = {"kind": "rate", "every": 5, "unit": "minutes"}


def test_installed_plugins_load_through_the_entry_point_group() -> None:
    pm = get_plugin_manager()
    names = {pm.get_name(p) for p in pm.get_plugins()}
    assert {"example", "webhook", "html_checker"} <= names
    registry = build_registry(pm)
    assert registry.ENUM_MAPPING["HTMLMonitorJob"] == "html_monitor_job"
    assert registry.ENUM_MAPPING["ExampleJob"] == "example_job"
    assert registry.CLASS_MAPPING["example_job"].__name__ == "ExampleJob"
    assert registry.owner_of("example_job") == "example"
    assert registry.JobType.HTMLMonitorJob == "html_monitor_job"


def test_blocked_plugins_are_not_loaded() -> None:
    pm = get_plugin_manager(settings=Settings(blocked_plugins=["webhook"]))
    registry = build_registry(pm)
    assert "webhook_job" not in registry
    assert "html_monitor_job" in registry


def test_blocked_plugins_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCHEDULER_BLOCKED_PLUGINS", "webhook, example")
    registry = build_registry(get_plugin_manager())
    assert registry.known() == ["html_monitor_job"]


def test_seed_style_plugin_export_loads_with_the_one_line_helper() -> None:
    plugin = ModuleType("seed_plugin")
    plugin.serverless_scheduler_job_types = job_types_from_export(  # type: ignore[attr-defined]
        "seed_plugin_export"
    )
    pm = get_plugin_manager(plugins=[plugin], load_entrypoints=False)
    registry = build_registry(pm)
    assert registry.ENUM_MAPPING == seed_plugin_export.ENUM_MAPPING
    assert registry.CLASS_MAPPING == seed_plugin_export.CLASS_MAPPING
    job = registry.parse_job(
        {"job_type": "seed_algorithm_job", "name": "n", "schedule": RATE, "algorithm": "x"}
    )
    assert isinstance(job, seed_plugin_export.SeedAlgorithmJob)


def test_plugin_export_without_the_dicts_fails_clearly() -> None:
    plugin = ModuleType("broken_plugin")
    plugin.serverless_scheduler_job_types = job_types_from_export(ModuleType("empty"))  # type: ignore[attr-defined]
    pm = get_plugin_manager(plugins=[plugin], load_entrypoints=False)
    with pytest.raises(PluginError, match="must define ENUM_MAPPING and CLASS_MAPPING"):
        build_registry(pm)


def test_duplicate_job_type_fails_at_start_up_naming_both_plugins() -> None:
    class OtherExampleJob(ScheduledJob):
        job_type: Literal["example_job"] = "example_job"

    class Impostor:
        @hookimpl
        def serverless_scheduler_job_types(self, registry: JobTypeRegistry) -> None:
            registry.add(OtherExampleJob)

    pm = get_plugin_manager(plugins=[Impostor()])
    with pytest.raises(DuplicateJobTypeError) as info:
        build_registry(pm)
    message = str(info.value)
    assert "'example_job'" in message
    assert "'example'" in message and "ExampleJob" in message and "OtherExampleJob" in message


def test_misspelled_hook_fails_at_start_up() -> None:
    class Typo:
        @hookimpl
        def serverless_scheduler_job_type(self, registry: JobTypeRegistry) -> None:
            raise AssertionError("never called")

    with pytest.raises(Exception, match="unknown hook"):
        get_plugin_manager(plugins=[Typo()], load_entrypoints=False)


def test_class_without_literal_job_type_is_refused() -> None:
    class Loose(ScheduledJob):
        pass

    with pytest.raises(PluginError, match="must pin job_type"):
        JobTypeRegistry().add(Loose)


def test_unknown_job_type_is_a_validation_error_listing_known_types() -> None:
    registry = build_registry(get_plugin_manager())
    with pytest.raises(ValidationError) as info:
        registry.parse_job({"job_type": "nope", "name": "n", "schedule": RATE})
    (error,) = info.value.errors()
    assert error["loc"] == ("job_type",)
    assert "unknown job_type 'nope'" in error["msg"]
    assert "example_job, html_monitor_job, webhook_job" in error["msg"]


def test_missing_job_type_is_reported_on_the_field() -> None:
    registry = build_registry(get_plugin_manager())
    with pytest.raises(ValidationError) as info:
        registry.parse_job({"name": "n", "schedule": RATE})
    assert info.value.errors()[0]["loc"] == ("job_type",)


def test_parse_job_returns_the_plugin_class_and_validates_its_fields() -> None:
    registry = build_registry(get_plugin_manager())
    job = registry.parse_job(
        {
            "job_type": "html_monitor_job",
            "name": "docs",
            "schedule": RATE,
            "url": "https://example.org/",
            "css_selector": "#main",
        }
    )
    assert type(job).__name__ == "HTMLMonitorJob"
    with pytest.raises(ValidationError) as info:
        registry.parse_job(
            {"job_type": "html_monitor_job", "name": "x", "schedule": RATE, "url": "ftp://x"}
        )
    assert info.value.errors()[0]["loc"] == ("url",)
