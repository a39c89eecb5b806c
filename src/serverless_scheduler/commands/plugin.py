"""`serverless-scheduler plugin new NAME`: scaffold a working plugin package.

The package has a job class, its consumer, tests that fire the job through the real
runtime (the `fire_job` fixture), a pyproject with the `serverless_scheduler` entry point,
and a Terraform stub built on `terraform/modules/plugin_consumer`. Its tests pass as
generated.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from typing import Any

NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,38}[a-z0-9]$")

#: The object type of the `platform` variable every plugin module declares, attribute by
#: attribute: everything the platform module's `platform` output carries. Terraform
#: silently drops the attributes a variable's object type lacks (a missing
#: `alarm_actions` left a plugin's alarms notifying nobody), so the stub must declare
#: every one; tests/runtime/test_plugin_scaffold.py compares this with the output and
#: with the in-repo plugin modules.
PLATFORM_TYPE_ATTRIBUTES: tuple[tuple[str, str], ...] = (
    ("name_prefix", "string"),
    ("topic_arn", "string"),
    ("jobs_table_name", "string"),
    ("jobs_table_arn", "string"),
    ("runs_table_name", "string"),
    ("runs_table_arn", "string"),
    ("lambda_runtime", "string"),
    ("lambda_architecture", "string"),
    ("log_retention_days", "number"),
    ("tags", "map(string)"),
    ("alarm_actions", "optional(list(string), [])"),
)


def register(sub: Any) -> None:
    parser = sub.add_parser("plugin", help="plugin author tools")
    actions = parser.add_subparsers(dest="plugin_command", required=True, metavar="ACTION")
    new = actions.add_parser("new", help="scaffold a plugin package NAME in DIR/NAME")
    new.add_argument("name", help="plugin name: lower case letters, digits and _ (e.g. demo)")
    new.add_argument("--dir", default=".", help="parent directory (default: current directory)")
    new.add_argument("--force", action="store_true", help="write into an existing directory")
    new.set_defaults(func=run)


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_") if part)


def _platform_type() -> str:
    """`PLATFORM_TYPE_ATTRIBUTES` as HCL, aligned the way `terraform fmt` aligns it."""
    width = max(len(name) for name, _type in PLATFORM_TYPE_ATTRIBUTES)
    lines = "".join(
        f"    {name.ljust(width)} = {type_}\n" for name, type_ in PLATFORM_TYPE_ATTRIBUTES
    )
    return f"object({{\n{lines}  }})"


def _find_up(start: Path, relative: str) -> Path | None:
    for folder in [start, *start.parents]:
        if (folder / relative).exists():
            return folder / relative
    return None


def _in_uv_workspace(start: Path) -> bool:
    for folder in [start, *start.parents]:
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file() and "[tool.uv.workspace]" in pyproject.read_text(encoding="utf-8"):
            return True
    return False


def render(name: str, target: Path) -> dict[str, str]:
    """The files of a new plugin package (path relative to `target` -> text)."""
    module = f"serverless_scheduler_{name}"
    dist = f"serverless-scheduler-{name.replace('_', '-')}"
    job_class = f"{_camel(name)}Job"
    job_type = f"{name}_job"
    terraform_dir = target / "terraform"
    consumer_module = _find_up(target.parent, "terraform/modules/plugin_consumer")
    if consumer_module is not None:
        source = os.path.relpath(consumer_module, terraform_dir)
    else:  # the usual place: plugins/<name>/terraform in the project tree
        source = "../../../terraform/modules/plugin_consumer"
    sources = ""
    if _in_uv_workspace(target.parent):
        sources = "\n[tool.uv.sources]\nserverless-scheduler-common = { workspace = true }\n"

    files: dict[str, str] = {}
    files["pyproject.toml"] = f'''[project]
name = "{dist}"
version = "0.1.0"
description = "Serverless Scheduler plugin: {name}."
requires-python = ">=3.11"
dependencies = ["serverless-scheduler-common"]

[project.entry-points.serverless_scheduler]
{name} = "{module}.plugin"

[build-system]
requires = ["uv_build>=0.9,<0.14"]
build-backend = "uv_build"
{sources}'''
    files["README.md"] = f"""# {name}

A Serverless Scheduler plugin with one job type, `{job_type}`.

- `src/{module}/plugin.py`: the job class `{job_class}` (its fields are the job's
  fields in the API and the web UI form) and the consumer hook that runs on each fire.
- `tests/`: fire the job through the real runtime with the `fire_job` fixture.
- `terraform/`: the plugin's AWS consumer (SNS subscription filtered on `{job_type}`,
  SQS queue and dead-letter queue, Lambda), built on `plugin_consumer`.

Raise from the consumer to have the runtime retry; return a `RunOutcome` for the
run history. Outbound HTTP goes through `serverless_scheduler_common.http.OutboundHTTP`.
"""
    files[f"src/{module}/__init__.py"] = f'"""{_camel(name)} plugin for Serverless Scheduler."""\n'
    files[f"src/{module}/py.typed"] = ""
    files[
        f"src/{module}/plugin.py"
    ] = f'''"""Entry-point module of the {name} plugin: its job type and consumer."""

from __future__ import annotations

import logging
from typing import Literal

from pydantic import Field

from serverless_scheduler_common import (
    JobFired,
    JobTypeRegistry,
    RunContext,
    RunOutcome,
    ScheduledJob,
    hookimpl,
)

log = logging.getLogger(__name__)


class {job_class}(ScheduledJob):
    """What one {name} job does on every fire (describe it here)."""

    job_type: Literal["{job_type}"] = "{job_type}"
    message: str = Field(default="hello", max_length=500, description="What to report.")


@hookimpl
def serverless_scheduler_job_types(registry: JobTypeRegistry) -> None:
    registry.add({job_class})


@hookimpl
def serverless_scheduler_handle_job(
    job: ScheduledJob, fired: JobFired, context: RunContext
) -> RunOutcome | None:
    if not isinstance(job, {job_class}):
        return None
    log.info("{job_type} %s fired for %s", job.job_id, fired.scheduled_time)
    return RunOutcome(status="ok", summary=f"{name}: {{job.message[:100]}}")
'''
    files[
        "tests/conftest.py"
    ] = '''"""The platform's `fire_job` fixture: one fire through the real runtime."""

from __future__ import annotations

from serverless_scheduler_common.testing import fire_job

__all__ = ["fire_job"]
'''
    files[f"tests/test_{name}.py"] = f'''"""Tests of the {name} plugin."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from {module} import plugin
from {module}.plugin import {job_class}

SCHEDULE = {{"kind": "rate", "every": 5, "unit": "minutes"}}


def test_job_type_is_registered() -> None:
    from serverless_scheduler_common.plugins import build_registry, get_plugin_manager

    pm = get_plugin_manager()
    if not pm.is_registered(plugin):
        pm.register(plugin)
    assert build_registry(pm).get("{job_type}") is {job_class}


def test_a_fire_runs_the_consumer(fire_job: Any) -> None:
    job = {job_class}(name="first", schedule=SCHEDULE, message="it works")
    run = fire_job(job, plugins=[plugin])
    assert run.status == "ok"
    assert run.summary == "{name}: it works"


def test_bad_input_names_the_field() -> None:
    with pytest.raises(ValidationError, match="message"):
        {job_class}(name="x", schedule=SCHEDULE, message="x" * 501)
'''
    files[
        "terraform/main.tf"
    ] = f'''# AWS consumer of the {name} plugin: SNS subscription filtered on its job types,
# SQS queue + dead-letter queue, and the Lambda running the platform's consumer runtime.
module "consumer" {{
  source = "{source}"

  platform     = var.platform
  plugin_name  = "{name}"
  job_types    = ["{job_type}"]
  package_path = var.package_path
}}
'''
    files["terraform/outputs.tf"] = f"""output "queue_url" {{
  description = "URL of the {name} consumer's buffer queue."
  value       = module.consumer.queue_url
}}

output "dlq_url" {{
  description = "URL of the {name} consumer's dead-letter queue (the environment's `plugin_dlq_urls`)."
  value       = module.consumer.dlq_url
}}

output "function_name" {{
  description = "Name of the {name} consumer function."
  value       = module.consumer.function_name
}}
"""
    files["terraform/variables.tf"] = f"""variable "platform" {{
  description = "What every plugin needs from the core: the platform module's `platform` output."
  type = {_platform_type()}
}}

variable "package_path" {{
  description = "Path of the plugin's function zip built by utils/build."
  type        = string
}}
"""
    return files


def run(args: argparse.Namespace) -> int:
    name = args.name
    if not NAME_RE.fullmatch(name):
        print(
            f"error: NAME {name!r} must be 2-40 characters: lower case letters, digits and _, "
            "starting with a letter",
            file=sys.stderr,
        )
        return 2
    target = Path(args.dir).resolve() / name
    if target.exists() and any(target.iterdir()) and not args.force:
        print(f"error: {target} exists and is not empty (use --force)", file=sys.stderr)
        return 1
    for relative, text in render(name, target).items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    print(f"created plugin {name!r} in {target} (job type {name}_job)")
    print(_next_steps(target))
    return 0


def _next_steps(target: Path) -> str:
    """How to install the new plugin so its tests and `serve` see it: a workspace
    member (`plugins/*` of this repository) goes into the lock file; elsewhere it is
    installed where serverless-scheduler is."""
    root = target.parent.parent
    project = root / "pyproject.toml"
    in_workspace = (
        target.parent.name == "plugins"
        and project.is_file()
        and "[tool.uv.workspace]" in project.read_text(encoding="utf-8")
    )
    if in_workspace:
        where = target.relative_to(root)
        return (
            "next (from the repository's root):\n"
            "  .tools/bin/uv lock && make env      # add it to the workspace and install it\n"
            f"  .venv/bin/pytest {where / 'tests'}\n"
            f"  make run                             # serves {target.name}_job too"
        )
    return (
        "next: install it where serverless-scheduler is installed, then run its tests:\n"
        f"  pip install -e {target}    (or: uv pip install -e {target})\n"
        f"  pytest {target / 'tests'}\n"
        "inside the serverless-scheduler repository, create it with --dir plugins instead:\n"
        "`make` keeps only the lock file's packages installed"
    )
