"""API benchmark: local-mode throughput and latency of the items API over loopback.

Starts the real app (SQLite store, bearer-token auth, uvicorn) in a separate process
on 127.0.0.1, then `--clients` threads send a create + list mix (`--list-ratio` of the
requests are `GET /jobs?limit=50`, the rest `POST /jobs`) for `--requests` requests in
total. Prints one JSON object: requests_per_s, p50_ms, p99_ms and the run's parameters.

    python benchmarks/api.py --requests 2000 --clients 8 --list-ratio 0.5
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(data_dir: str, port: int) -> None:
    import logging

    import uvicorn

    from serverless_scheduler_common import Settings
    from serverless_scheduler_items.app import create_app
    from serverless_scheduler_items.auth import SqliteTokenStore
    from serverless_scheduler_items.sqlite_repository import SqliteJobRepository

    logging.disable(logging.INFO)
    db = Path(data_dir) / "scheduler.db"
    app = create_app(
        settings=Settings(data_dir=Path(data_dir)),
        repo=SqliteJobRepository(db),
        authenticator=SqliteTokenStore(db),
        static_dir=Path(data_dir) / "no-ui",
    )
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _wait_ready(base: str, timeout_s: float = 30.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/api/v1/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError("the API did not start")


def _percentile(sorted_ms: list[float], q: float) -> float:
    index = min(len(sorted_ms) - 1, max(0, round(q * (len(sorted_ms) - 1))))
    return sorted_ms[index]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--list-ratio", type=float, default=0.5)
    args = parser.parse_args(argv)

    import httpx

    from serverless_scheduler_items.auth import SqliteTokenStore

    with tempfile.TemporaryDirectory() as data_dir:
        token = SqliteTokenStore(Path(data_dir) / "scheduler.db").create("bench")
        port = _free_port()
        server = multiprocessing.get_context("spawn").Process(
            target=_serve, args=(data_dir, port), daemon=True
        )
        server.start()
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_ready(base)
            body = {
                "job_type": "webhook_job",
                "name": "bench",
                "schedule": {"kind": "rate", "every": 5, "unit": "minutes"},
                "url": "https://example.com/hook",
                "headers": {"X-Token": "secret"},
            }
            headers = {"Authorization": f"Bearer {token}"}
            latencies: list[float] = []
            errors: list[int] = []
            lock = threading.Lock()
            counter = iter(range(args.requests))
            every = max(1, round(1 / args.list_ratio)) if args.list_ratio > 0 else 0

            def worker() -> None:
                mine: list[float] = []
                bad: list[int] = []
                with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
                    while True:
                        with lock:
                            i = next(counter, None)
                        if i is None:
                            break
                        start = time.perf_counter()
                        if every and i % every == 0:
                            response = client.get("/api/v1/jobs", params={"limit": 50})
                        else:
                            response = client.post("/api/v1/jobs", json=body)
                        mine.append((time.perf_counter() - start) * 1000)
                        if response.status_code >= 400:
                            bad.append(response.status_code)
                with lock:
                    latencies.extend(mine)
                    errors.extend(bad)

            threads = [threading.Thread(target=worker) for _ in range(args.clients)]
            started = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            elapsed = time.perf_counter() - started
        finally:
            server.terminate()
            server.join(10)

    latencies.sort()
    result: dict[str, Any] = {
        "benchmark": "api",
        "requests": len(latencies),
        "clients": args.clients,
        "list_ratio": args.list_ratio,
        "errors": len(errors),
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(_percentile(latencies, 0.50), 2),
        "p99_ms": round(_percentile(latencies, 0.99), 2),
    }
    print(json.dumps(result))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
