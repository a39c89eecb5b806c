"""The Lambda artifacts utils/build writes, checked against Terraform.

Each function's zip is built once per session (the same code path `utils/deploy` uses),
unzipped, and imported in a clean interpreter that sees only the artifact and the
environment Terraform gives that function.

Convention (docs/deploy.md): every Lambda handler module declares
`REQUIRED_SETTINGS: tuple[str, ...]`, the `Settings` field names it cannot start without;
Terraform must set `SCHEDULER_<FIELD>` for each.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from serverless_scheduler_common.settings import Settings

pytestmark = pytest.mark.terraform

#: Terraform address of each function (the same in every deployment).
FUNCTION_ADDRESSES = {
    "items": "module.platform.module.items.module.function",
    "sync": "module.platform.module.schedulers.module.sync",
    "reconcile": "module.platform.module.schedulers.module.reconcile",
    "html_checker": "module.html_checker.module.consumer.module.function",
    "webhook": "module.webhook.module.consumer.module.function",
}

#: Functions whose handler can be invoked with an empty batch without calling AWS: this
#: wires them as Lambda would (clients, plugin manager from the artifact's entry points).
EMPTY_EVENT_SAFE = {"html_checker", "webhook"}

#: Functions that wire lazily through `build()` on the first event; calling it creates
#: their AWS clients (from the artifact's botocore models) without calling AWS.
LAZY_BUILD = {"sync", "reconcile"}

_PROBE = r"""
import importlib, json, sys
sys.path.insert(0, sys.argv[1])
module_name, _, attr = sys.argv[2].rpartition(".")
module = importlib.import_module(module_name)
handler = getattr(module, attr)
import botocore.session
from serverless_scheduler_common.plugins import default_registry
out = {
    "job_types": sorted(default_registry().known()),
    "callable": callable(handler),
    "file": module.__file__,
    "required": list(getattr(module, "REQUIRED_SETTINGS", ["<missing REQUIRED_SETTINGS>"])),
    "outside": sorted(
        m for m, mod in sys.modules.items()
        if getattr(mod, "__file__", None) and "site-packages" in (mod.__file__ or "")
    ),
}
if sys.argv[3] == "invoke":
    out["reply"] = handler({"Records": []}, None)
    runtime = module._runtime
    out["state"] = type(runtime.state).__name__
    out["notifier"] = type(runtime.notifier).__name__
if sys.argv[3] == "build":
    out["built"] = type(module.build()).__name__
    import boto3
    out["endpoints"] = {
        s: boto3.client(s).meta.endpoint_url
        for s in botocore.session.get_session().get_available_services()
    }
out["aws_models"] = sorted(botocore.session.get_session().get_available_services())
print(json.dumps(out))
"""


def _dummy(key: str) -> str:
    """A valid value for the setting behind an environment variable."""
    field = Settings.model_fields.get(key.removeprefix("SCHEDULER_").lower())
    annotation = str(field.annotation) if field else ""
    if "bool" in annotation:
        return "true"
    if "int" in annotation or "float" in annotation:
        return "1"
    if key.endswith("_URL"):
        return "https://sqs.eu-central-1.amazonaws.com/123456789012/test"
    if key.endswith("_ARN"):
        return "arn:aws:sns:eu-central-1:123456789012:test"
    return f"test-{key.lower()}"


def _lambda_env(keys: set[str]) -> dict[str, str]:
    """What the function sees on Lambda: its Terraform variables and an AWS region."""
    env = {k: _dummy(k) for k in keys}
    env.update(
        {
            "AWS_DEFAULT_REGION": "eu-central-1",
            "AWS_REGION": "eu-central-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    return env


def _probe(
    artifact: Path, handler: str, env_keys: set[str], *, mode: str = "import"
) -> dict[str, Any]:
    # -I: no user site, no PYTHON* env; -S: not even the venv's site-packages.
    proc = subprocess.run(
        [
            sys.executable,
            "-I",
            "-S",
            "-c",
            _PROBE,
            str(artifact),
            handler,
            mode,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=_lambda_env(env_keys),
    )
    assert proc.returncode == 0, f"{handler} failed in its artifact:\n{proc.stderr[-3000:]}"
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


@pytest.fixture(scope="session")
def instances(tree: Any) -> dict[tuple[str, str], Any]:
    return {(i.deployment, i.address): i for i in tree.lambda_instances()}


def test_every_terraform_function_is_a_built_function(
    instances: dict[tuple[str, str], Any], build_script: ModuleType
) -> None:
    addresses = set(FUNCTION_ADDRESSES.values())
    for env, address in instances:
        assert address in addresses, f"{env}: {address} is not mapped to a built function"
    for name, address in FUNCTION_ADDRESSES.items():
        for env in ("dev", "prod"):
            inst = instances[(env, address)]
            function = build_script.FUNCTIONS[name]
            assert inst.handler == function.handler, f"{env}/{name}: handler differs from build"
            assert inst.package_path.endswith(f"/{name}.zip"), (
                f"{env}/{name}: deploys {inst.package_path}, not {name}.zip"
            )


@pytest.mark.parametrize("name", sorted(FUNCTION_ADDRESSES))
def test_handler_resolves_inside_its_artifact_with_its_terraform_environment(
    name: str,
    artifacts: dict[str, Path],
    instances: dict[tuple[str, str], Any],
    build_script: ModuleType,
) -> None:
    handler = build_script.FUNCTIONS[name].handler
    for env in ("dev", "prod"):
        inst = instances[(env, FUNCTION_ADDRESSES[name])]
        result = _probe(artifacts[name], handler, inst.environment_keys)
        assert result["callable"], f"{handler} is not callable"
        assert result["file"].startswith(str(artifacts[name])), "imported from outside the zip"
        assert result["outside"] == [], f"modules loaded from site-packages: {result['outside']}"

        required = result["required"]
        assert "<missing REQUIRED_SETTINGS>" not in required, (
            f"{handler.rpartition('.')[0]} must declare REQUIRED_SETTINGS (docs/deploy.md)"
        )
        unknown = [f for f in required if f not in Settings.model_fields]
        assert not unknown, f"{name}: REQUIRED_SETTINGS names unknown settings {unknown}"
        missing = [f for f in required if f"SCHEDULER_{f.upper()}" not in inst.environment_keys]
        assert not missing, f"{env}/{name}: Terraform does not set {missing}"
        unknown_env = [
            k
            for k in inst.environment_keys
            if k.removeprefix("SCHEDULER_").lower() not in Settings.model_fields
        ]
        assert not unknown_env, f"{env}/{name}: Terraform sets unknown settings {unknown_env}"


@pytest.mark.parametrize("name", sorted(EMPTY_EVENT_SAFE))
def test_consumer_wires_its_plugin_from_the_artifact(
    name: str,
    artifacts: dict[str, Path],
    instances: dict[tuple[str, str], Any],
    build_script: ModuleType,
) -> None:
    inst = instances[("prod", FUNCTION_ADDRESSES[name])]
    result = _probe(
        artifacts[name], build_script.FUNCTIONS[name].handler, inst.environment_keys, mode="invoke"
    )
    assert result["reply"] == {"batchItemFailures": []}
    assert result["job_types"], f"{name}: its plugin registers no job type"
    assert result["notifier"] == "AppriseNotifier"
    # Plugins get a DynamoDB state store exactly when Terraform gives them a state table.
    has_table = "SCHEDULER_STATE_TABLE" in inst.environment_keys
    assert result["state"] == ("DynamoDBStateStore" if has_table else "NoneType"), name
    assert has_table == (name == "html_checker")


@pytest.mark.parametrize("name", sorted(LAZY_BUILD))
def test_lazy_handlers_create_their_clients_from_the_artifact(
    name: str,
    artifacts: dict[str, Path],
    instances: dict[tuple[str, str], Any],
    build_script: ModuleType,
) -> None:
    inst = instances[("prod", FUNCTION_ADDRESSES[name])]
    result = _probe(
        artifacts[name], build_script.FUNCTIONS[name].handler, inst.environment_keys, mode="build"
    )
    assert result["built"] in {"StreamSync", "function"}
    assert "scheduler" in result["aws_models"]
    # The pruned endpoints.json still resolves every kept service as the full one does.
    for service, url in result["endpoints"].items():
        assert url == f"https://{service}.eu-central-1.amazonaws.com", (name, service, url)


def test_items_api_knows_every_deployed_plugins_job_types(
    artifacts: dict[str, Path],
    instances: dict[tuple[str, str], Any],
    build_script: ModuleType,
) -> None:
    """The API validates job bodies against the registry, so it must carry every plugin."""

    def job_types(name: str) -> set[str]:
        inst = instances[("prod", FUNCTION_ADDRESSES[name])]
        handler = build_script.FUNCTIONS[name].handler
        return set(_probe(artifacts[name], handler, inst.environment_keys)["job_types"])

    api = job_types("items")
    for name in EMPTY_EVENT_SAFE:
        consumer = job_types(name)
        assert consumer, name
        assert consumer <= api, f"items lacks the job types of {name}: {sorted(consumer - api)}"


def test_pruning_leaves_the_installed_botocore_alone(artifacts: dict[str, Path]) -> None:
    """uv hard-links installs to its cache: the build must replace files, not edit them."""
    import botocore

    data = Path(botocore.__file__).parent / "data"
    doc = json.loads((data / "endpoints.json").read_text())
    assert len(doc["partitions"][0]["services"]) > 100
    assert len([p for p in data.iterdir() if p.is_dir()]) > 100
    for root in artifacts.values():
        pruned = json.loads((root / "botocore" / "data" / "endpoints.json").read_text())
        assert len(pruned["partitions"][0]["services"]) < 10


def test_artifacts_carry_only_the_aws_models_their_adapters_use(
    artifacts: dict[str, Path], build_script: ModuleType
) -> None:
    for name, root in artifacts.items():
        kept = {p.name for p in (root / "botocore" / "data").iterdir() if p.is_dir()}
        wanted = build_script.aws_services(build_script.FUNCTIONS[name])
        assert kept == wanted, f"{name}: ships {sorted(kept)}, needs {sorted(wanted)}"
        assert len(kept) <= 8, f"{name}: unused AWS models shipped: {sorted(kept)}"
        assert (root / "botocore" / "data" / "endpoints.json").exists(), name


def test_artifacts_ship_unchecked_hash_bytecode_for_every_module(
    artifacts: dict[str, Path],
) -> None:
    tag = sys.implementation.cache_tag
    for name, root in artifacts.items():
        sources = [p for p in root.rglob("*.py") if "__pycache__" not in p.parts]
        assert sources
        missing = [
            p for p in sources if not (p.parent / "__pycache__" / f"{p.stem}.{tag}.pyc").exists()
        ]
        # A few vendored files are not valid Python 3 (test fixtures of dependencies).
        assert len(missing) <= len(sources) // 100, f"{name}: no .pyc for {missing[:5]}"
        own = next(root.glob("serverless_scheduler_common/__pycache__/__init__.*.pyc"))
        flags = int.from_bytes(own.read_bytes()[4:8], "little")
        assert flags == 0b01, f"{name}: expected unchecked-hash pycs, flags={flags:#b}"


def test_artifacts_hold_nothing_machine_specific(artifacts: dict[str, Path]) -> None:
    for name, root in artifacts.items():
        assert not list(root.glob("*.dist-info/direct_url.json")), name
        assert not (root / "bin").exists(), name
        assert not (root / ".lock").exists(), name
        eps = (root / "serverless_scheduler_common-0.1.0.dist-info").exists()
        assert eps, f"{name}: workspace packages must ship their metadata"
        for so in root.rglob("*.so"):
            assert "aarch64" not in so.name, f"{name}: {so.name} is not an x86_64 build"


def test_build_is_reproducible_and_zip_entries_are_normalised(
    build_script: ModuleType, artifact_zips: dict[str, Path], tmp_path: Path
) -> None:
    again = build_script.build("webhook", out_dir=tmp_path / "out", work_dir=tmp_path / "work")
    assert again.read_bytes() == artifact_zips["webhook"].read_bytes()
    with zipfile.ZipFile(again) as zf:
        infos = zf.infolist()
    names = [i.filename for i in infos]
    assert names == sorted(names)
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}


def test_build_cli_rejects_bad_parameters(build_script: ModuleType) -> None:
    with pytest.raises(SystemExit):
        build_script.main(["--runtime", "node18", "sync"])
    with pytest.raises(SystemExit):
        build_script.main(["no_such_function"])
