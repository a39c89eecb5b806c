"""Cold import time of each built Lambda artifact.

Builds every function with utils/build (into build/bench-lambda), then for each one
starts a fresh interpreter that sees only the unzipped artifact (`-I -S`), imports the
handler module and reports the median wall time of the import over a few runs.
Prints one JSON object {function: ms, ..., "first_event_ms": {function: ms}}; targets
(on the import): sync and reconcile < 150 ms, items < 400 ms, plugin consumers < 300 ms.

`first_event_ms` adds what the first event costs on top of the import: the lazily wired
functions create their AWS clients and load plugins then (sync and reconcile through
`build()`, consumers on an empty batch); items wires at import, so both figures match.
Together they are the Python part of a cold start (the runtime's own start-up aside).

`source_compiled` counts the artifact's modules the first-event path had to compile from
source (one extra run under `-v`): it must stay 0, or the zip's `.pyc` files are not
being used (wrong Python version tag, or stale checked pycs) and every cold start pays
for compiling. `--runs N` sets the repetitions per function (median reported).
"""

from __future__ import annotations

import argparse
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
RUNS = 7
TARGETS_MS = {"sync": 150, "reconcile": 150, "items": 400, "html_checker": 300, "webhook": 300}
#: What the first event does after the import, per handler module (see the docstring).
FIRST_EVENT = {
    "serverless_scheduler_items.lambda_handler": "none",
    "serverless_scheduler_schedulers.lambda_sync": "build",
    "serverless_scheduler_schedulers.lambda_reconcile": "build",
    "serverless_scheduler_common.runtime.lambda_consumer": "invoke",
}

_PROBE = (
    "import sys, time, importlib; sys.path.insert(0, sys.argv[1]); t = time.perf_counter();"
    "m = importlib.import_module(sys.argv[2]); t1 = time.perf_counter();"
    "_ = m.build() if sys.argv[3] == 'build' else None;"
    "_ = m.handler({'Records': []}, None) if sys.argv[3] == 'invoke' else None;"
    "print((t1 - t) * 1000, (time.perf_counter() - t) * 1000)"
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


def _env() -> dict[str, str]:
    """Settings shaped like the ones Terraform gives the functions."""
    env = {
        f"SCHEDULER_{n.upper()}": f"bench-{n}"
        for n in ("jobs_table", "runs_table", "idempotency_table", "schedule_group")
    }
    env.update(
        {
            "SCHEDULER_TOPIC_ARN": "arn:aws:sns:eu-central-1:123456789012:bench",
            "SCHEDULER_SCHEDULER_ROLE_ARN": "arn:aws:iam::123456789012:role/bench",
            "SCHEDULER_SCHEDULER_DLQ_ARN": "arn:aws:sqs:eu-central-1:123456789012:bench",
            "AWS_DEFAULT_REGION": "eu-central-1",
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    return env


def _source_compiled(target: Path, module: str, mode: str) -> int:
    """Artifact modules compiled from source (not loaded from a .pyc) on the probe's path."""
    proc = subprocess.run(
        [sys.executable, "-I", "-S", "-v", "-c", _PROBE, str(target), module, mode],
        capture_output=True,
        text=True,
        env=_env(),
        check=False,
    )
    # -v prints "# code object from '<...>.pyc'" for a cached module and
    # "# code object from <...>.py" when it compiled the source.
    prefix = f"# code object from {target}/"
    return sum(1 for line in proc.stderr.splitlines() if line.startswith(prefix))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("functions", nargs="*", help="default: every function utils/build knows")
    parser.add_argument("--runs", type=int, default=RUNS, help=f"repetitions (default {RUNS})")
    args = parser.parse_args(argv)
    build = _load_build()
    out = ROOT / "build" / "bench-lambda"
    results: dict[str, object] = {}
    first_event: dict[str, float] = {}
    source_compiled: dict[str, int] = {}
    functions = build.FUNCTIONS  # type: ignore[attr-defined]
    unknown = sorted(set(args.functions) - set(functions))
    if unknown:
        parser.error(f"unknown function(s) {unknown}; known: {', '.join(functions)}")
    for name, function in functions.items():
        if args.functions and name not in args.functions:
            continue
        zip_path = build.build(name, out_dir=out)  # type: ignore[attr-defined]
        target = out / name
        shutil.rmtree(target, ignore_errors=True)  # a stale tree would hide what the zip holds
        with zipfile.ZipFile(zip_path) as zf:
            zf.extractall(target)
        module = function.handler.rpartition(".")[0]
        mode = FIRST_EVENT.get(module, "none")
        imports, totals = [], []
        for _ in range(args.runs):
            proc = subprocess.run(
                [sys.executable, "-I", "-S", "-c", _PROBE, str(target), module, mode],
                capture_output=True,
                text=True,
                env=_env(),
                check=False,
            )
            if proc.returncode != 0:
                sys.stderr.write(f"{name}: import failed\n{proc.stderr}\n")
                return 1
            imported, total = map(float, proc.stdout.strip().splitlines()[-1].split())
            imports.append(imported)
            totals.append(total)
        results[name] = round(statistics.median(imports), 1)
        first_event[name] = round(statistics.median(totals), 1)
        source_compiled[name] = _source_compiled(target, module, mode)
    results["first_event_ms"] = first_event
    results["source_compiled"] = source_compiled
    sys.stdout.write(json.dumps(results) + "\n")
    over = {
        n: ms for n, ms in results.items() if isinstance(ms, float) and ms > TARGETS_MS.get(n, 300)
    }
    if over:
        sys.stderr.write(f"over target: {over}\n")
    if any(source_compiled.values()):
        sys.stderr.write(f"modules compiled from source (pycs unused): {source_compiled}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
