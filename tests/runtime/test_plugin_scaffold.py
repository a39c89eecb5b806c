"""`serverless-scheduler plugin new demo`: the package works as generated.

The package is "installed" for subprocesses only: its `src/` plus a written `.dist-info`
(carrying the entry point) go on PYTHONPATH, so the shared environment is never changed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import hcl2
import pytest

from serverless_scheduler.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _unquote(value: Any) -> Any:
    """python-hcl2 keeps the quotes of strings and keys; drop them."""
    if isinstance(value, dict):
        return {_unquote(k): _unquote(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unquote(v) for v in value]
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def _object_attributes(type_expr: str) -> dict[str, str]:
    """The attributes of an `object({...})` type as python-hcl2 renders it
    (`${object({a = string, b = optional(list(string), [])})}`): name -> type."""
    text = type_expr.strip()
    if text.startswith("${") and text.endswith("}"):
        text = text[2:-1].strip()
    assert text.startswith("object({") and text.endswith("})"), type_expr
    body = text[len("object({") : -len("})")]
    parts: list[str] = []
    depth, start = 0, 0
    for at, char in enumerate(body):
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(body[start:at])
            start = at + 1
    parts.append(body[start:])
    attributes = {}
    for part in filter(str.strip, parts):
        name, _, type_ = part.partition("=")
        attributes[name.strip()] = " ".join(type_.split())
    return attributes


def _platform_variable_type(variables_tf: Path) -> dict[str, str] | None:
    with variables_tf.open() as handle:
        blocks = _unquote(hcl2.load(handle)).get("variable", [])
    for block in blocks:
        if "platform" in block:
            return _object_attributes(block["platform"]["type"])
    return None


def _install_for_subprocess(package: Path, site: Path) -> dict[str, str]:
    info = site / "serverless_scheduler_demo-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: serverless-scheduler-demo\nVersion: 0.1.0\n"
    )
    (info / "entry_points.txt").write_text(
        "[serverless_scheduler]\ndemo = serverless_scheduler_demo.plugin\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SCHEDULER_", "PYTEST_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(package / "src"), str(site)])
    return env


def test_plugin_new_demo_passes_its_tests_and_is_listed_by_the_api(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plugin", "new", "demo", "--dir", str(tmp_path)]) == 0
    package = tmp_path / "demo"
    assert "created plugin 'demo'" in capsys.readouterr().out
    for relative in [
        "pyproject.toml",
        "src/serverless_scheduler_demo/plugin.py",
        "tests/test_demo.py",
        "terraform/main.tf",
    ]:
        assert (package / relative).is_file(), relative
    pyproject = (package / "pyproject.toml").read_text()
    assert 'demo = "serverless_scheduler_demo.plugin"' in pyproject
    with (package / "terraform" / "main.tf").open() as handle:
        [blocks] = hcl2.load(handle)["module"]
    module = _unquote(blocks)["consumer"]
    assert module["source"].endswith("terraform/modules/plugin_consumer")
    assert module["job_types"] == ["demo_job"]
    # the stub sets every required input of the project's module, and only known ones
    with (ROOT / "terraform/modules/plugin_consumer/variables.tf").open() as handle:
        variables = _unquote(hcl2.load(handle))["variable"]
    known = {name for block in variables for name in block}
    required = {
        name for block in variables for name, spec in block.items() if "default" not in spec
    }
    arguments = set(module) - {"source", "__is_block__"}
    assert required <= arguments, required - arguments
    assert arguments <= known, arguments - known
    # its outputs (an environment lists `dlq_url` in `plugin_dlq_urls`) are the consumer's
    with (package / "terraform" / "outputs.tf").open() as handle:
        stub_outputs = _unquote(hcl2.load(handle))["output"]
    with (ROOT / "terraform/modules/plugin_consumer/outputs.tf").open() as handle:
        consumer_outputs = {
            name for block in _unquote(hcl2.load(handle))["output"] for name in block
        }
    values = {name: spec["value"] for block in stub_outputs for name, spec in block.items()}
    assert "dlq_url" in values
    for name, value in values.items():
        assert value.removeprefix("${module.consumer.").removesuffix("}") in consumer_outputs, name

    env = _install_for_subprocess(package, tmp_path / "site")
    tests = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(package),
            "-c",
            str(package / "pyproject.toml"),
            str(package / "tests"),
        ],
        cwd=package,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "3 passed" in tests.stdout

    script = f"""
import json
from pathlib import Path
from typing import Any
from fastapi.testclient import TestClient
from serverless_scheduler_common import Settings
from serverless_scheduler_items.app import create_app
from serverless_scheduler_items.auth import SqliteTokenStore
from serverless_scheduler_items.sqlite_repository import SqliteJobRepository

db = Path({str(tmp_path / "data" / "scheduler.db")!r})
db.parent.mkdir(parents=True, exist_ok=True)
tokens = SqliteTokenStore(db)
app = create_app(settings=Settings(data_dir=db.parent), repo=SqliteJobRepository(db),
                 authenticator=tokens, static_dir=db.parent / "no-ui")
client = TestClient(app)
reply = client.get("/api/v1/job_types",
                   headers={{"Authorization": "Bearer " + tokens.create("alice")}})
print(json.dumps({{"status": reply.status_code, "body": reply.json()}}))
"""
    listed = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert listed.returncode == 0, listed.stderr
    reply = json.loads(listed.stdout.strip().splitlines()[-1])
    assert reply["status"] == 200
    types = {item["job_type"]: item for item in reply["body"]["items"]}
    assert "demo_job" in types
    assert "message" in types["demo_job"]["schema"]["properties"]


def test_plugin_new_rejects_bad_names_and_existing_dirs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plugin", "new", "Bad-Name", "--dir", str(tmp_path)]) == 2
    assert "NAME 'Bad-Name'" in capsys.readouterr().err
    assert main(["plugin", "new", "demo", "--dir", str(tmp_path)]) == 0
    assert main(["plugin", "new", "demo", "--dir", str(tmp_path)]) == 1
    assert "exists" in capsys.readouterr().err


def test_terraform_source_points_at_the_project_module(tmp_path: Path) -> None:
    (tmp_path / "terraform" / "modules" / "plugin_consumer").mkdir(parents=True)
    (tmp_path / "plugins").mkdir()
    assert main(["plugin", "new", "demo", "--dir", str(tmp_path / "plugins")]) == 0
    text = (tmp_path / "plugins" / "demo" / "terraform" / "main.tf").read_text()
    assert 'source = "../../../terraform/modules/plugin_consumer"' in text


def test_plugin_new_says_how_to_install_it_inside_and_outside_the_workspace(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Its tests import the package, so it must be installed first: a member of this
    repository's workspace goes into the lock file (`make` installs only that)."""
    assert main(["plugin", "new", "alone", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"pip install -e {tmp_path / 'alone'}" in out
    assert "--dir plugins" in out

    repo = tmp_path / "repo"
    (repo / "plugins").mkdir(parents=True)
    (repo / "pyproject.toml").write_text('[tool.uv.workspace]\nmembers = ["plugins/*"]\n')
    assert main(["plugin", "new", "member", "--dir", str(repo / "plugins")]) == 0
    out = capsys.readouterr().out
    assert "uv lock && make env" in out
    assert "member_job" in out and "pip install" not in out


def test_scaffold_declares_every_attribute_the_platform_output_provides(tmp_path: Path) -> None:
    """Terraform silently drops the attributes of `module.platform.platform` that a
    plugin's `platform` variable type lacks (a stub without `alarm_actions` gave its
    consumer alarms that notify nobody): the stub declares exactly the type of the
    output and of the in-repo plugin modules."""
    assert main(["plugin", "new", "demo", "--dir", str(tmp_path)]) == 0
    scaffold = _platform_variable_type(tmp_path / "demo" / "terraform" / "variables.tf")
    assert scaffold is not None, "the stub declares no platform variable"

    with (ROOT / "terraform/modules/platform/outputs.tf").open() as handle:
        outputs = _unquote(hcl2.load(handle))["output"]
    [provided] = [block["platform"]["value"] for block in outputs if "platform" in block]
    provided_names = set(provided) - {"__is_block__"}
    assert "alarm_actions" in provided_names
    assert provided_names - set(scaffold) == set(), "the stub would drop these attributes"
    assert set(scaffold) - provided_names == set(), "the stub requires what platform lacks"

    plugin_modules = {
        variables_tf.parent: attributes
        for variables_tf in [
            *(ROOT / "terraform" / "modules").glob("*/variables.tf"),
            *(ROOT / "plugins").glob("*/terraform/variables.tf"),
        ]
        if (attributes := _platform_variable_type(variables_tf)) is not None
    }
    assert {"webhook", "html_checker", "plugin_consumer"} <= {p.name for p in plugin_modules}
    for path, attributes in plugin_modules.items():
        assert attributes == scaffold, f"{path.relative_to(ROOT)} declares another platform type"


def test_object_attributes_reads_nested_types() -> None:
    assert _object_attributes(
        "${object({a = string, b = optional(list(string), []), c = map(object({d = number}))})}"
    ) == {"a": "string", "b": "optional(list(string), [])", "c": "map(object({d = number}))"}


def test_plugin_new_under_plugins_passes_the_repositorys_lint(tmp_path: Path) -> None:
    """`make lint` runs `ruff check .` and `ruff format --check .` at the root with the
    root pyproject's configuration: a new plugin under plugins/ passes both unedited,
    and its Terraform stub is `terraform fmt` clean."""
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "plugins").mkdir()
    assert main(["plugin", "new", "ping", "--dir", str(tmp_path / "plugins")]) == 0
    for command in (["check", "--no-cache", "."], ["format", "--no-cache", "--check", "."]):
        lint = subprocess.run(
            [sys.executable, "-m", "ruff", *command],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert lint.returncode == 0, f"ruff {command[0]}:\n{lint.stdout}{lint.stderr}"
    terraform = shutil.which("terraform")
    if terraform is not None:
        fmt = subprocess.run(
            [terraform, "fmt", "-check", "-diff", str(tmp_path / "plugins" / "ping" / "terraform")],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert fmt.returncode == 0, fmt.stdout + fmt.stderr
