"""Fixtures for the Terraform and Lambda artifact checks.

`TerraformTree` parses every `.tf` file with python-hcl2 and answers the questions the
static checks ask: what each module declares, what it references, and, for every Lambda
function a deployment creates, its handler, environment keys and granted IAM actions
(followed through the module calls from the deployment root).
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import re
import shutil
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import hcl2
import pytest

ROOT = Path(__file__).resolve().parents[2]
TERRAFORM = ROOT / "terraform"
#: `plugin new` writes a plugin's module to plugins/<name>/terraform/, and the deployments
#: call it from there: those modules are part of the tree the checks read.
PLUGINS = ROOT / "plugins"
META_ARGS = {"source", "version", "count", "for_each", "depends_on", "providers"}

_REF_LOCAL = re.compile(r"\blocal\.([A-Za-z_][\w-]*)")
_REF_VAR = re.compile(r"\bvar\.([A-Za-z_][\w-]*)")
_ACTION = re.compile(r'"([a-z0-9-]+:[A-Za-z0-9*]+)"')


def unquote(value: Any) -> Any:
    """python-hcl2 keeps string literals quoted ('"x"'); drop the quotes."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def strings_in(value: Any) -> Iterator[str]:
    """Every string inside a parsed HCL value (keys included), comments excluded."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            if key in ("__comments__", "__is_block__"):
                continue
            yield key
            yield from strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)


@dataclass
class ModuleDir:
    """One Terraform module directory, merged over its .tf files."""

    path: Path
    variables: dict[str, dict[str, Any]] = field(default_factory=dict)
    locals: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    modules: dict[str, dict[str, Any]] = field(default_factory=dict)
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)  # "type.name"
    data: dict[str, dict[str, Any]] = field(default_factory=dict)  # "type.name"
    raw: list[tuple[Path, dict[str, Any]]] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path) -> ModuleDir:
        mod = cls(path)
        for tf in sorted(path.glob("*.tf")):
            with tf.open() as fh:
                doc = hcl2.load(fh)
            mod.raw.append((tf, doc))
            for block in doc.get("variable", []):
                for name, body in block.items():
                    mod.variables[unquote(name)] = body
            for block in doc.get("locals", []):
                mod.locals.update({k: v for k, v in block.items() if not k.startswith("__")})
            for block in doc.get("output", []):
                for name, body in block.items():
                    mod.outputs[unquote(name)] = body
            for block in doc.get("module", []):
                for name, body in block.items():
                    mod.modules[unquote(name)] = body
            for kind, target in (("resource", mod.resources), ("data", mod.data)):
                for block in doc.get(kind, []):
                    for rtype, named in block.items():
                        for rname, body in named.items():
                            target[f"{unquote(rtype)}.{unquote(rname)}"] = body
        return mod

    def module_source(self, name: str) -> Path:
        return (self.path / unquote(self.modules[name]["source"])).resolve()


@dataclass
class LambdaInstance:
    """A lambda_function module instance reached from a deployment root."""

    address: str  # e.g. module.items.module.function
    deployment: str
    handler: str
    package_path: str
    environment_keys: set[str]
    actions: set[str]


def terraform_files(root: Path = TERRAFORM, plugins: Path | None = PLUGINS) -> list[Path]:
    """Every .tf file under `root`, plus those of `plugins/*/terraform/` (module stubs of
    plugins made with `plugin new`)."""
    found = [tf for tf in root.rglob("*.tf") if ".terraform" not in tf.parts]
    if plugins is not None:
        found += plugins.glob("*/terraform/*.tf")
    return sorted(found)


class TerraformTree:
    """Every module and deployment under terraform/ (and the plugins' own modules)."""

    def __init__(self, root: Path = TERRAFORM, plugins: Path | None = None) -> None:
        self.root = root
        self.dirs: dict[Path, ModuleDir] = {}
        for tf in terraform_files(root, plugins):
            if tf.parent not in self.dirs:
                self.dirs[tf.parent] = ModuleDir.load(tf.parent)

    def module(self, path: Path) -> ModuleDir:
        return self.dirs[path.resolve()]

    @property
    def deployments(self) -> dict[str, ModuleDir]:
        base = (self.root / "deployments").resolve()
        return {p.name: m for p, m in self.dirs.items() if p.parent == base}

    # -- following values through module calls -----------------------------------------
    def _reachable(
        self, value: Any, chain: list[tuple[ModuleDir, dict[str, Any]]], seen: set[str]
    ) -> Iterator[str]:
        """Strings reachable from `value` in module chain[-1], following local.* and var.*."""
        mod, _args = chain[-1]
        for text in strings_in(value):
            yield text
            for name in _REF_LOCAL.findall(text):
                key = f"{mod.path}:local.{name}"
                if key not in seen and name in mod.locals:
                    seen.add(key)
                    yield from self._reachable(mod.locals[name], chain, seen)
            for name in _REF_VAR.findall(text):
                key = f"{mod.path}:var.{name}:{id(chain[-1][1])}"
                if key in seen:
                    continue
                seen.add(key)
                yield from self._var_strings(name, chain, seen)

    def _var_strings(
        self, name: str, chain: list[tuple[ModuleDir, dict[str, Any]]], seen: set[str]
    ) -> Iterator[str]:
        mod, args = chain[-1]
        if name in args and len(chain) > 1:
            yield from self._reachable(args[name], chain[:-1], seen)
        elif name in mod.variables and "default" in mod.variables[name]:
            yield from self._reachable(mod.variables[name]["default"], chain, seen)

    def resolve_literal(self, value: Any, chain: list[tuple[ModuleDir, dict[str, Any]]]) -> str:
        """Follow a `${var.x}` chain up to the caller's expression; return it unquoted."""
        value = unquote(value)
        while isinstance(value, str) and re.fullmatch(r"\$\{var\.(\w+)\}", value):
            name = value[6:-1]
            _mod, args = chain[-1]
            if name not in args or len(chain) == 1:
                break
            chain = chain[:-1]
            value = unquote(args[name])
        return str(value)

    def lambda_instances(self) -> list[LambdaInstance]:
        found: list[LambdaInstance] = []
        for env, root in sorted(self.deployments.items()):
            self._walk(root, [(root, {})], "", env, found)
        return found

    def _walk(
        self,
        mod: ModuleDir,
        chain: list[tuple[ModuleDir, dict[str, Any]]],
        prefix: str,
        env: str,
        found: list[LambdaInstance],
    ) -> None:
        for name, body in mod.modules.items():
            target = self.module(mod.module_source(name))
            address = f"{prefix}module.{name}"
            if target.path.name == "lambda_function":
                handler = self.resolve_literal(body["handler"], chain)
                env_strings = list(self._reachable(body.get("environment", {}), chain, set()))
                keys = {k for s in env_strings for k in re.findall(r"\bSCHEDULER_[A-Z0-9_]+", s)}
                policy = list(self._reachable(body.get("policy_statements", []), chain, set()))
                actions = {a for s in policy for a in _ACTION.findall(f'"{unquote(s)}"')}
                actions |= {a for s in policy for a in _ACTION.findall(s)}
                found.append(
                    LambdaInstance(
                        address=address,
                        deployment=env,
                        handler=handler,
                        package_path=self.resolve_literal(body["package_path"], chain),
                        environment_keys=keys,
                        actions=actions,
                    )
                )
            else:
                self._walk(target, [*chain, (target, body)], f"{address}.", env, found)


def load_build_script() -> ModuleType:
    """utils/build as a module (it is an executable script without a .py suffix)."""
    path = ROOT / "utils" / "build"
    loader = importlib.machinery.SourceFileLoader("serverless_scheduler_build", str(path))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[loader.name] = module  # dataclasses look their module up while building
    loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def tf() -> SimpleNamespace:
    """The helpers above, for test modules (conftest is not importable by name)."""
    return SimpleNamespace(
        ROOT=ROOT,
        TERRAFORM=TERRAFORM,
        PLUGINS=PLUGINS,
        META_ARGS=META_ARGS,
        TerraformTree=TerraformTree,
        terraform_files=terraform_files,
        strings_in=strings_in,
        unquote=unquote,
    )


@pytest.fixture(scope="session")
def tree() -> TerraformTree:
    return TerraformTree(TERRAFORM, PLUGINS)


@pytest.fixture(scope="session")
def build_script() -> ModuleType:
    return load_build_script()


@pytest.fixture(scope="session")
def artifacts(
    build_script: ModuleType, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """Every function's zip, built once per session, unzipped: name -> directory."""
    out = tmp_path_factory.mktemp("dist")
    work = tmp_path_factory.mktemp("work")
    unzipped: dict[str, Path] = {}
    for name in build_script.FUNCTIONS:
        zip_path = build_script.build(name, out_dir=out, work_dir=work)
        target = out / name
        with zipfile.ZipFile(zip_path) as zf:
            zf.extractall(target)
        unzipped[name] = target
    shutil.rmtree(work, ignore_errors=True)
    return unzipped


@pytest.fixture(scope="session")
def artifact_zips(artifacts: dict[str, Path]) -> dict[str, Path]:
    return {name: path.with_suffix(".zip") for name, path in artifacts.items()}
