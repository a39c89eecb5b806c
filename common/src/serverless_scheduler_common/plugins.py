"""Building the plugin manager and the job-type registry from installed plugins."""

from __future__ import annotations

import importlib
import logging
from functools import cache
from types import ModuleType
from typing import Any

import pluggy

from . import hookspecs
from .errors import PluginError
from .hookspecs import PROJECT, hookimpl
from .registry import JobTypeRegistry
from .settings import Settings

log = logging.getLogger(__name__)

#: Entry-point group plugins register under (`[project.entry-points.serverless_scheduler]`).
ENTRY_POINT_GROUP = PROJECT


def get_plugin_manager(
    *,
    settings: Settings | None = None,
    plugins: list[object] | None = None,
    load_entrypoints: bool = True,
) -> pluggy.PluginManager:
    """Build a plugin manager: hookspecs, entry points, extra plugins, then validation.

    Plugins named in `SCHEDULER_BLOCKED_PLUGINS` are blocked before loading;
    `SCHEDULER_TRACE_HOOKS=true` logs every hook call. `check_pending()` makes a
    misspelled hook implementation fail here rather than be silently ignored.
    """
    settings = settings or Settings()
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    for name in settings.blocked_plugins:
        pm.set_blocked(name)
    if load_entrypoints:
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    for plugin in plugins or []:
        pm.register(plugin)
    pm.check_pending()
    if settings.trace_hooks:
        pm.trace.root.setwriter(log.debug)
        pm.enable_tracing()
    return pm


def build_registry(pm: pluggy.PluginManager) -> JobTypeRegistry:
    """Ask every plugin for its job types; duplicates fail naming both plugins."""
    registry = JobTypeRegistry()
    for plugin in pm.get_plugins():
        name = pm.get_name(plugin) or repr(plugin)
        impl = getattr(plugin, "serverless_scheduler_job_types", None)
        if impl is None:
            continue
        registry._current_plugin = name
        impl(registry=registry)
    registry._current_plugin = "<direct>"
    return registry


def consumer_for(pm: pluggy.PluginManager, registry: JobTypeRegistry, job_type: str) -> Any:
    """The `serverless_scheduler_handle_job` hook restricted to the plugin owning job_type."""
    owner = registry.owner_of(job_type)
    others = [p for p in pm.get_plugins() if pm.get_name(p) != owner]
    return pm.subset_hook_caller("serverless_scheduler_handle_job", remove_plugins=others)


def job_types_from_export(module: ModuleType | str) -> Any:
    """Turn a seed-style `plugin_export` module into a `serverless_scheduler_job_types` hook.

    In the plugin's entry-point module write one line::

        serverless_scheduler_job_types = job_types_from_export("my_plugin.plugin_export")

    The module must define `ENUM_MAPPING` (name -> job_type) and `CLASS_MAPPING`
    (job_type -> ScheduledJob subclass).
    """

    def _load() -> ModuleType:
        return importlib.import_module(module) if isinstance(module, str) else module

    @hookimpl
    def serverless_scheduler_job_types(registry: JobTypeRegistry) -> None:
        mod = _load()
        try:
            enum_mapping, class_mapping = mod.ENUM_MAPPING, mod.CLASS_MAPPING
        except AttributeError as exc:
            raise PluginError(f"{mod.__name__} must define ENUM_MAPPING and CLASS_MAPPING") from exc
        registry.add_mappings(enum_mapping, class_mapping)

    return serverless_scheduler_job_types


@cache
def default_registry() -> JobTypeRegistry:
    """The registry of every installed plugin (cached for the process)."""
    return build_registry(get_plugin_manager())
