"""`serverless-scheduler plugin new demo`: the package works as generated.

The package is "installed" for subprocesses only: its `src/` plus a written `.dist-info`
(carrying the entry point) go on PYTHONPATH, so the shared environment is never changed.
"""

from __future__ import annotations

import json
import os
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
