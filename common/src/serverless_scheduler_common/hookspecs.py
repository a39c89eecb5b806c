"""Hook specifications of the `serverless_scheduler` plugin system.

Every hook is prefixed `serverless_scheduler_`. Plugins implement them with the
`hookimpl` marker re-exported by `serverless_scheduler_common`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from .context import RunContext
    from .events import JobFired
    from .job import ScheduledJob
    from .ports import StateStore
    from .registry import JobTypeRegistry
    from .runs import RunOutcome

PROJECT = "serverless_scheduler"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def serverless_scheduler_job_types(registry: JobTypeRegistry) -> None:
    """Register the plugin's job classes with `registry.add(JobClass)`.

    Called once when the plugin manager is built. Each class must subclass
    `ScheduledJob` and pin `job_type` to a `Literal` default; the registry derives the
    seed's `ENUM_MAPPING` (class name -> job_type) and `CLASS_MAPPING` (job_type -> class)
    from what is added, and start-up fails if two plugins add the same job_type.
    """


@hookspec(firstresult=True)
def serverless_scheduler_handle_job(
    job: ScheduledJob, fired: JobFired, context: RunContext
) -> RunOutcome | None:
    """Handle one fire of a job whose type this plugin registered.

    `fired.job` is `job` itself (validated once, with the fire), not the snapshot dict
    the event carries on the wire. The runtime calls only the plugin that owns
    `job.job_type`. It must be idempotent per `fired.fire_id` (deliveries are at least
    once); raise to have the runtime retry with backoff and, past the retry cap,
    dead-letter the fire. Return a `RunOutcome` (status, summary, detail) for the run
    history; `None` counts as an `ok` run.
    """


@hookspec
def serverless_scheduler_forget_job(
    owner_id: str, job_id: str, job_type: str, state: StateStore
) -> None:
    """A job was deleted: drop what the plugin keeps for it in `state`.

    Called for every plugin with the deleted job's type: do nothing for job types the
    plugin does not own. Local mode calls it once the deletion reaches the scheduler
    (after the job's runs are forgotten, before the change is acknowledged); on AWS the
    consumer runtime calls it when the sync Lambda's `JobRemoved` notice arrives. A
    crash or a second delivery calls it again: it must be idempotent
    (`StateStore.forget` is).
    """


@hookspec(firstresult=True)
def serverless_scheduler_change_history(
    owner_id: str, job_id: str, job_type: str, state: StateStore, limit: int
) -> list[dict[str, Any]] | None:
    """Return up to `limit` changes the plugin recorded for a job, newest first.

    Called by the items API (`GET /jobs/{job_id}/changes`) after it checked that the
    job exists and belongs to `owner_id`. Return `None` for job types the plugin does
    not own (the first list returned is the answer), and a list, possibly empty, for
    the types it keeps a history of in `state`. Each entry is a dict with `at` (when
    the change was detected, ISO 8601), `summary`, `added` and `removed` (line counts)
    and `diff` (unified diff text), optionally `fire_id`; the API passes on only these
    keys, so a plugin must never put secrets (notification URLs, headers) into them.
    Read only: it must not change `state`.
    """


@hookspec
def serverless_scheduler_ui_hints(job_type: str) -> dict[str, Any] | None:
    """Return UI hints for a job type's fields (labels, placeholders, widget names).

    Keys are field names, values dicts such as `{"widget": "textarea", "placeholder":
    "https://"}`. Return `None` for job types the plugin does not own. The web UI
    merges every answer into the form it renders from the type's JSON schema.
    """


@hookspec
def serverless_scheduler_terraform_module() -> str | None:
    """Return the path of the plugin's Terraform module (built on `plugin_consumer`).

    Deployment tooling lists these so an operator can enable the plugin with one
    module block. Return `None` when the plugin needs no infrastructure of its own.
    """
