"""Cold import time of each built Lambda artifact.

Builds every function with utils/build (into build/bench-lambda), then for each one
starts a fresh interpreter that sees only the unzipped artifact (`-I -S`), imports the
handler module and reports the median wall time of the import over a few runs.
Prints one JSON object {function: ms}; targets: sync and reconcile < 150 ms,
items < 400 ms, plugin consumers < 300 ms.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import shutil
import statistics
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = 5
TARGETS_MS = {"sync": 150, "reconcile": 150, "items": 400, "html_checker": 300, "webhook": 300}

_PROBE = (
    "import sys, time; sys.path.insert(0, sys.argv[1]); t = time.perf_counter();"
    "import importlib; importlib.import_module(sys.argv[2]);"
    "print((time.perf_counter() - t) * 1000)"
)


def _load_build() -> object:
    loader = importlib.machinery.SourceFileLoader(
        "serverless_scheduler_build", str(ROOT / "utils" / "build")
    )
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[loader.name] = module
    loader.exec_module(module)
    return module


def _env(names: list[str]) -> dict[str, str]:
    env = {f"SCHEDULER_{n.upper()}": f"bench-{n}" for n in names}
    env.update(
        {
            "AWS_DEFAULT_REGION": "eu-central-1",
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    return env


def main() -> int:
    build = _load_build()
    out = ROOT / "build" / "bench-lambda"
    results: dict[str, float] = {}
    for name, function in build.FUNCTIONS.items():  # type: ignore[attr-defined]
        zip_path = build.build(name, out_dir=out)  # type: ignore[attr-defined]
        target = out / name
        shutil.rmtree(target, ignore_errors=True)  # a stale tree would hide what the zip holds
        with zipfile.ZipFile(zip_path) as zf:
            zf.extractall(target)
        module = function.handler.rpartition(".")[0]
        env = _env(
            [
                "jobs_table",
                "runs_table",
                "topic_arn",
                "idempotency_table",
                "schedule_group",
                "scheduler_role_arn",
                "scheduler_dlq_arn",
            ]
        )
        times = []
        for _ in range(RUNS):
            proc = subprocess.run(
                [sys.executable, "-I", "-S", "-c", _PROBE, str(target), module],
                capture_output=True,
                text=True,
                env=env,
                check=False,
            )
            if proc.returncode != 0:
                sys.stderr.write(f"{name}: import failed\n{proc.stderr}\n")
                return 1
            times.append(float(proc.stdout.strip().splitlines()[-1]))
        results[name] = round(statistics.median(times), 1)
    sys.stdout.write(json.dumps(results) + "\n")
    over = {n: ms for n, ms in results.items() if ms > TARGETS_MS.get(n, 300)}
    if over:
        sys.stderr.write(f"over target: {over}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
