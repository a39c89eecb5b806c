"""Static checks that stand in for `terraform validate` (no provider can be downloaded).

Formatting, parsing, every reference resolved, module interfaces honoured, module
layout and docs, log retention, and checkov over the whole tree.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

pytestmark = pytest.mark.terraform

ROOT = Path(__file__).resolve().parents[2]
TERRAFORM = ROOT / "terraform"
#: Modules of plugins made with `plugin new` live in plugins/<name>/terraform/.
PLUGIN_MODULES = sorted({path.parent for path in (ROOT / "plugins").glob("*/terraform/*.tf")})
META_ARGS = {"source", "version", "count", "for_each", "depends_on", "providers"}


def unquote(value: Any) -> Any:
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def strings_in(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        out: list[str] = []
        for key, item in value.items():
            if key not in ("__comments__", "__is_block__"):
                out += [key, *strings_in(item)]
        return out
    if isinstance(value, list):
        return [s for item in value for s in strings_in(item)]
    return []


_RESOURCE_REF = re.compile(r"(?<![\w.])(aws_[a-z0-9_]+)\.([A-Za-z_][\w-]*)")
_DATA_REF = re.compile(r"\bdata\.([a-z0-9_]+)\.([A-Za-z_][\w-]*)")
_MODULE_REF = re.compile(r"\bmodule\.([A-Za-z_][\w-]*)\.([A-Za-z_][\w-]*)")
_VAR_REF = re.compile(r"\bvar\.([A-Za-z_][\w-]*)")
_LOCAL_REF = re.compile(r"\blocal\.([A-Za-z_][\w-]*)")


def _terraform() -> str:
    found = shutil.which("terraform")
    assert found, "terraform is not on PATH; install Terraform >= 1.6 to run the static checks"
    return found


def _checkov() -> str:
    local = ROOT / ".tools" / "checkov" / "bin" / "checkov"
    found = str(local) if local.exists() else shutil.which("checkov")
    assert found, "checkov not installed: run `make .tools/checkov/bin/checkov`"
    return found


def test_terraform_fmt_check_passes() -> None:
    proc = subprocess.run(
        [
            _terraform(),
            "fmt",
            "-check",
            "-recursive",
            "-diff",
            *map(str, [TERRAFORM, *PLUGIN_MODULES]),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, f"terraform fmt would change files:\n{proc.stdout}{proc.stderr}"


def test_every_tf_file_parses(tree: Any, tf: SimpleNamespace) -> None:
    files = tf.terraform_files()
    parsed = [path for mod in tree.dirs.values() for path, _doc in mod.raw]
    assert len(files) >= 30
    assert sorted(parsed) == sorted(files)


def test_expected_modules_and_deployments_exist(tree: Any) -> None:
    modules = {p.name for p in tree.dirs if p.parent.name == "modules"}
    assert {
        "items",
        "schedulers",
        "distribution",
        "plugin_consumer",
        "html_checker",
        "webhook",
        "web",
        "platform",
        "queue_alarms",
    } <= modules
    assert set(tree.deployments) == {"dev", "prod"}


def test_modules_have_standard_files_and_documented_interface(tree: Any) -> None:
    problems = []
    for path, mod in tree.dirs.items():
        if path.parent.name != "modules":
            continue
        for name in ("main.tf", "variables.tf", "outputs.tf", "versions.tf", "README.md"):
            if not (path / name).exists():
                problems.append(f"{path.name}: missing {name}")
        readme = (path / "README.md").read_text() if (path / "README.md").exists() else ""
        for var, body in mod.variables.items():
            if "description" not in body or "type" not in body:
                problems.append(f"{path.name}: variable {var} lacks description or type")
            if f"`{var}`" not in readme:
                problems.append(f"{path.name}: README does not document input {var}")
        for out, body in mod.outputs.items():
            if "description" not in body:
                problems.append(f"{path.name}: output {out} lacks a description")
            if f"`{out}`" not in readme:
                problems.append(f"{path.name}: README does not document output {out}")
    assert not problems, "\n".join(problems)


def test_deployments_own_backend_tfvars_and_secret_example(tree: Any) -> None:
    for env, mod in tree.deployments.items():
        path = mod.path
        backend = (path / "backend.hcl.example").read_text()
        assert f"/{env}/" in backend, f"{env}: backend key must be per environment"
        assert (path / "secret.tfvars.example").exists()
        tfvars = (path / "terraform.tfvars").read_text()
        assert f'environment           = "{env}"' in tfvars
        names = {
            unquote(k)
            for _tf, doc in mod.raw
            for block in doc.get("terraform", [])
            for b in block.get("backend", [])
            for k in b
        }
        assert names == {"s3"}, f"{env}: expected an s3 backend block, got {names}"
        # Every tfvars entry names a declared variable.
        for key in re.findall(r"^([a-z_]+)\s*=", tfvars, re.MULTILINE):
            assert key in mod.variables, f"{env}/terraform.tfvars sets undeclared {key}"
            assert mod.variables[key].get("sensitive") is not True, (
                f"{env}/terraform.tfvars sets sensitive {key}; it belongs in {env}.secret.tfvars"
            )
        secrets = (path / "secret.tfvars.example").read_text()
        for key in re.findall(r"^([a-z_]+)\s*=", secrets, re.MULTILINE):
            assert key in mod.variables, f"{env}/secret.tfvars.example sets undeclared {key}"


#: Files of a deployment that may differ between environments (settings, not code).
PER_ENVIRONMENT_FILES = {"terraform.tfvars", "backend.hcl.example", "secret.tfvars.example"}

#: What the platform module supplies through `platform`; a plugin never passes these itself.
CORE_CONSUMER_INPUTS = {
    "name_prefix",
    "topic_arn",
    "jobs_table_name",
    "jobs_table_arn",
    "runs_table_name",
    "runs_table_arn",
    "lambda_runtime",
    "lambda_architecture",
    "log_retention_days",
    "tags",
    "alarm_actions",
}


def _deployment_files(path: Path) -> dict[str, str]:
    return {
        f.name: f.read_text()
        for f in sorted(path.iterdir())
        if f.is_file() and (f.suffix == ".tf" or f.name in PER_ENVIRONMENT_FILES)
    }


def test_deployments_differ_only_in_their_settings(tree: Any) -> None:
    """dev and prod share every .tf file byte for byte; only tfvars/backend/secrets differ."""
    files = {env: _deployment_files(mod.path) for env, mod in tree.deployments.items()}
    names = {env: set(found) for env, found in files.items()}
    assert names["dev"] == names["prod"], names
    assert names["dev"] >= PER_ENVIRONMENT_FILES
    differing = sorted(
        name
        for name in names["dev"] - PER_ENVIRONMENT_FILES
        if files["dev"][name] != files["prod"][name]
    )
    assert not differing, f"dev and prod differ in {differing}: move the shared part to a module"
    assert files["dev"]["terraform.tfvars"] != files["prod"]["terraform.tfvars"]


def test_deployment_is_one_platform_block_and_one_block_per_plugin(tree: Any) -> None:
    for env, mod in tree.deployments.items():
        assert not mod.resources and not mod.data, f"{env}: resources belong in a module"
        assert not mod.locals, f"{env}: locals belong in the platform module"
        platform = mod.modules.get("platform")
        assert platform is not None, f"{env}: no platform module block"
        assert mod.module_source("platform") == (TERRAFORM / "modules" / "platform").resolve()
        for name, body in mod.modules.items():
            if name == "platform":
                continue
            target = tree.module(mod.module_source(name))
            assert "platform" in target.variables, f"{env}: {name} is not a plugin module"
            assert unquote(body["platform"]) == "${module.platform.platform}", (
                f"{env}: plugin {name} must be given module.platform.platform"
            )
            assert "${module.platform.artifacts_dir}/" in unquote(body["package_path"]), (
                f"{env}: plugin {name} must read its zip from the platform's artifacts_dir"
            )


def test_plugins_give_the_consumer_the_platform_not_its_fields(tree: Any) -> None:
    consumer = (TERRAFORM / "modules" / "plugin_consumer").resolve()
    callers = 0
    for path, mod in tree.dirs.items():
        for name, body in mod.modules.items():
            if mod.module_source(name) != consumer:
                continue
            callers += 1
            where = f"{path.name}: module {name}"
            assert unquote(body.get("platform")) == "${var.platform}", f"{where} lacks platform"
            repeated = sorted(CORE_CONSUMER_INPUTS & set(body))
            assert not repeated, f"{where} repeats what platform supplies: {repeated}"
    assert callers >= 2
    # The core values feed every consumer resource through local.core, which prefers platform.
    main = (consumer / "main.tf").read_text()
    assert "core = var.platform != null ? var.platform :" in main
    for field in CORE_CONSUMER_INPUTS:
        assert f"local.core.{field}" in main, f"plugin_consumer never uses platform's {field}"


def test_every_reference_is_defined(tree: Any) -> None:
    problems: list[str] = []
    for path, mod in tree.dirs.items():
        where = path.relative_to(ROOT)
        texts = [s for _tf, doc in mod.raw for s in strings_in(doc)]
        for text in texts:
            for name in _VAR_REF.findall(text):
                if name not in mod.variables:
                    problems.append(f"{where}: var.{name} is not declared")
            for name in _LOCAL_REF.findall(text):
                if name not in mod.locals:
                    problems.append(f"{where}: local.{name} is not defined")
            for rtype, rname in _DATA_REF.findall(text):
                if f"{rtype}.{rname}" not in mod.data:
                    problems.append(f"{where}: data.{rtype}.{rname} is not defined")
            for rtype, rname in _RESOURCE_REF.findall(text):
                if f"{rtype}.{rname}" not in mod.resources:
                    problems.append(f"{where}: resource {rtype}.{rname} is not defined")
            for mname, output in _MODULE_REF.findall(text):
                if mname not in mod.modules:
                    problems.append(f"{where}: module.{mname} is not called here")
                    continue
                target = tree.module(mod.module_source(mname))
                if output not in target.outputs:
                    problems.append(
                        f"{where}: module.{mname}.{output} is not an output of {target.path.name}"
                    )
    assert not problems, "\n".join(sorted(set(problems)))


def test_module_calls_match_the_called_modules_variables(tree: Any) -> None:
    problems: list[str] = []
    for path, mod in tree.dirs.items():
        where = path.relative_to(ROOT)
        for name, body in mod.modules.items():
            source = unquote(body["source"])
            assert source.startswith("../"), f"{where}: module {name} must be a local module"
            target_path = mod.module_source(name)
            if target_path not in tree.dirs:
                problems.append(f"{where}: module {name} source {source} has no .tf files")
                continue
            target = tree.dirs[target_path]
            passed = {k for k in body if k not in META_ARGS and not k.startswith("__")}
            for arg in sorted(passed - set(target.variables)):
                problems.append(f"{where}: module {name} passes undeclared argument {arg}")
            required = {v for v, b in target.variables.items() if "default" not in b}
            for arg in sorted(required - passed):
                problems.append(f"{where}: module {name} misses required argument {arg}")
    assert not problems, "\n".join(problems)


def test_reference_check_catches_mistakes(tmp_path: Path, tf: SimpleNamespace) -> None:
    """The checker itself fails on an undeclared variable and a missing module output."""
    (tmp_path / "modules" / "m").mkdir(parents=True)
    (tmp_path / "deployments" / "dev").mkdir(parents=True)
    (tmp_path / "modules" / "m" / "main.tf").write_text(
        'variable "a" {\n  type = string\n}\noutput "o" {\n  value = var.a\n}\n'
    )
    (tmp_path / "deployments" / "dev" / "main.tf").write_text(
        'module "m" {\n  source = "../../modules/m"\n  b = var.missing\n}\n'
        'output "x" {\n  value = module.m.nope\n}\n'
    )
    bad = tf.TerraformTree(tmp_path)
    root = bad.deployments["dev"]
    texts = [s for _tf, doc in root.raw for s in strings_in(doc)]
    assert any("var.missing" in t for t in texts)
    assert "missing" not in root.variables
    target = bad.module(root.module_source("m"))
    assert "nope" not in target.outputs
    assert {v for v, b in target.variables.items() if "default" not in b} == {"a"}


def test_every_declared_variable_is_used(tree: Any) -> None:
    unused = []
    for path, mod in tree.dirs.items():
        texts = " ".join(s for _tf, doc in mod.raw for s in strings_in(doc))
        used = set(_VAR_REF.findall(texts))
        unused += [f"{path.relative_to(ROOT)}: var.{v}" for v in mod.variables if v not in used]
    assert not unused, "declared but never used:\n" + "\n".join(unused)


def test_every_log_group_has_retention(tree: Any) -> None:
    groups = 0
    for mod in tree.dirs.values():
        for address, body in mod.resources.items():
            if address.startswith("aws_cloudwatch_log_group."):
                groups += 1
                assert "retention_in_days" in body, f"{mod.path.name}: {address} keeps logs forever"
    assert groups >= 2


def test_every_function_logs_json_lines_at_info(tree: Any) -> None:
    """The functions log through Python's logging: Lambda's JSON format keeps their INFO
    lines (its text format leaves the root logger at WARNING) as one object each."""
    functions = 0
    for mod in tree.dirs.values():
        for address, body in mod.resources.items():
            if address.startswith("aws_lambda_function."):
                functions += 1
                config = body["logging_config"]
                config = config[0] if isinstance(config, list) else config
                assert unquote(config["log_format"]) == "JSON", address
                assert unquote(config["application_log_level"]) == "INFO", address
    assert functions >= 1
    # No variable no one reads (the functions' settings ignore it on Lambda).
    for mod in tree.dirs.values():
        for tf_file in mod.path.glob("*.tf"):
            assert "SCHEDULER_LOG_JSON" not in tf_file.read_text(), tf_file.name


def test_every_queue_has_an_alarm_that_notifies_the_operators(tree: Any) -> None:
    """A dead-letter queue with messages, or a buffer queue whose oldest message keeps
    aging, is something an operator must hear of: every queue a module creates is
    watched through the `queue_alarms` module, given the platform's `alarm_actions`,
    and its alarms notify them when they fire and when they clear."""
    alarms_module = (TERRAFORM / "modules" / "queue_alarms").resolve()
    [alarm] = tree.module(alarms_module).resources.values()
    assert unquote(alarm["alarm_actions"]) == "${var.alarm_actions}"
    assert unquote(alarm["ok_actions"]) == "${var.alarm_actions}", "no notice when it clears"
    assert unquote(alarm["treat_missing_data"]) == "notBreaching"  # an idle queue is fine
    queues = 0
    for mod in tree.dirs.values():
        watched = set()
        for name, body in mod.modules.items():
            if mod.module_source(name) != alarms_module:
                continue
            where = f"{mod.path.name}: module {name}"
            actions = unquote(body["alarm_actions"])
            assert actions.endswith("alarm_actions}"), f"{where} notifies {actions}"
            watched |= {unquote(entry["queue_name"]) for entry in body["alarms"].values()}
        for address in mod.resources:
            if address.startswith("aws_sqs_queue."):
                queues += 1
                assert f"${{{address}.name}}" in watched, f"{mod.path.name}: {address} has no alarm"
    assert queues >= 4  # the schedules' DLQ, the sync failures, each consumer's queue and DLQ


def test_sns_subscriptions_filter_on_the_message_body(tree: Any) -> None:
    subs = [
        body
        for mod in tree.dirs.values()
        for address, body in mod.resources.items()
        if address.startswith("aws_sns_topic_subscription.")
    ]
    assert subs
    for body in subs:
        assert unquote(body["filter_policy_scope"]) == "MessageBody"
        assert body["raw_message_delivery"] is True
        assert "job_type" in body["filter_policy"]


def test_checkov_passes_with_every_skip_justified(tf: SimpleNamespace) -> None:
    for path in tf.terraform_files():
        for line in path.read_text().splitlines():
            if "checkov:skip=" in line:
                check, _, reason = line.split("checkov:skip=", 1)[1].partition(":")
                assert len(reason.strip()) >= 20, f"{path}: skip of {check} needs a justification"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SCHEDULER_")},
        "BC_SKIP_MAPPING": "TRUE",
        "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false",
    }
    failed: list[str] = []
    for directory in [TERRAFORM, *PLUGIN_MODULES]:  # checkov prints one report per -d
        proc = subprocess.run(
            [
                _checkov(),
                "-d",
                str(directory),
                "--framework",
                "terraform",
                "--skip-download",
                "--quiet",
                "--compact",
                "--output",
                "json",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
        assert proc.stdout.strip(), f"checkov printed nothing:\n{proc.stderr[-2000:]}"
        report = json.loads(proc.stdout)
        reports = report if isinstance(report, list) else [report]
        failed += [
            f"{c['check_id']} {c['resource']} ({c['file_path']})"
            for r in reports
            for c in r.get("results", {}).get("failed_checks", [])
        ]
        if directory == TERRAFORM:
            passed = sum(r.get("summary", {}).get("passed", 0) for r in reports)
            assert passed > 100, "checkov scanned suspiciously little"
        if not failed:  # a non-zero exit without failed checks is checkov's own error
            assert proc.returncode == 0, proc.stderr[-2000:]
    assert not failed, "checkov failures:\n" + "\n".join(failed)


def _of_timeout(expression: Any) -> Callable[[int], int]:
    """`${var.timeout * K}` (optionally inside `tostring(...)`, optionally `+ N`) as a
    function of the timeout."""
    found = re.search(r"var\.timeout(?:\s*\*\s*(\d+))?(?:\s*\+\s*(\d+))?", str(expression))
    assert found, f"{expression!r} does not follow the function timeout"
    factor, offset = int(found.group(1) or 1), int(found.group(2) or 0)
    return lambda timeout: timeout * factor + offset


def test_consumer_retry_settings_follow_the_queue(tree: Any) -> None:
    """The runtime's view of attempts and of a running fire must agree with SQS: its last
    attempt is the delivery after which SQS dead-letters the message, and the in-progress
    marker of a run outlives the run (the function timeout) but not the visibility
    timeout. With the default 900 s marker and a 60 s function, a fire whose invocation
    timed out came back after 360 s, found its own marker and was recorded as skipped:
    the fire was lost."""
    consumer = tree.module((TERRAFORM / "modules" / "plugin_consumer").resolve())
    env = consumer.locals["base_environment"]
    queue = consumer.resources["aws_sqs_queue.this"]
    assert "var.max_receive_count" in str(queue["redrive_policy"])
    assert "var.max_receive_count" in str(env.get("SCHEDULER_MAX_ATTEMPTS")), (
        "SCHEDULER_MAX_ATTEMPTS must be the queue's maxReceiveCount"
    )
    visibility = _of_timeout(queue["visibility_timeout_seconds"])
    lock_ttl = _of_timeout(env.get("SCHEDULER_RUN_LOCK_TTL_S"))
    for timeout in (1, 30, 60, 90, 900):
        assert timeout < lock_ttl(timeout) < visibility(timeout), timeout
