"""Checker benchmark: CPU per check of the HTML checker's real consumer path.

Serves `--pages` generated pages of about `--page-kb` KB (nested, realistic markup) from a
separate process on 127.0.0.1, then runs two check rounds through the plugin's hook with
a SQLite state store: round one records baselines, then a `--changed` fraction of the
pages change and round two checks them all again. CPU time is this process's only (the
server runs elsewhere). Prints one JSON object.

    python benchmarks/checker.py --pages 200 --page-kb 0.15 --changed 0.1
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

WORDS = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "price",
    "stock",
    "shipping",
    "order",
    "review",
    "rating",
    "colour",
    "size",
    "warranty",
    "delivery",
    "return",
    "policy",
    "update",
    "news",
    "release",
    "version",
    "notes",
    "feature",
]


def make_page(index: int, round_no: int, kb: float, changed: bool) -> bytes:
    """A page of about `kb` KB: head, nav, nested sections, a table, footer."""
    target = int(kb * 1024)
    marker = f"r{round_no}" if changed else "r1"
    head = (
        f"<!doctype html><html><head><title>P{index}</title></head><body>"
        f'<main id="m"><h1>Item {index}</h1><p class="s">State {marker}</p>'
    )
    tail = "</main></body></html>"
    if len(head) + len(tail) >= target:
        return (head + tail).encode()
    head = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Product {index}'
        '</title><link rel="stylesheet" href="/s.css"><style>.x{color:red}</style>'
        "<script>window.cfg={a:1,b:[1,2,3]};</script></head><body>"
        '<header class="top"><nav><ul><li><a href="/">Home</a></li><li><a href="/shop">'
        'Shop</a></li><li><a href="/help">Help</a></li></ul></nav></header><main id="m">'
        f'<article class="product"><h1>Product {index}</h1><div class="state"><p>'
        f"Status: <b>{marker}</b></p></div>"
    )
    tail = (
        '</article></main><footer><p>&copy; 2026 Shop &mdash; <a href="/terms">Terms</a>'
        "</p></footer></body></html>"
    )
    parts = [head]
    size = len(head) + len(tail)
    block = 0
    while size < target:
        words = " ".join(WORDS[(index + block + k) % len(WORDS)] for k in range(12))
        chunk = (
            f'<section class="block b{block}"><h2>Section {block}</h2><div class="row">'
            f'<div class="col"><p>{words} <em>{block}</em> <a href="/p/{block}">more</a></p>'
            f"<ul><li><span>{WORDS[block % len(WORDS)]}</span></li><li>{block * 7}</li></ul>"
            f"</div><table><tr><th>k</th><td>{block}</td></tr></table></div></section>"
        )
        parts.append(chunk)
        size += len(chunk)
        block += 1
    parts.append(tail)
    return "".join(parts).encode()


def serve(port_queue: Any, pages: int, kb: float, changed_count: int) -> None:
    """Page server process: /p/<i>; POST /round/<n> switches the content round."""
    state = {"round": 1}
    cache: dict[tuple[int, int], bytes] = {}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out without a delayed-ACK stall

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            state["round"] = int(self.path.rsplit("/", 1)[1])
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:
            index = int(self.path.rsplit("/", 1)[1])
            round_no = state["round"]
            is_changed = index < changed_count
            key = (index, round_no if is_changed else 1)
            if key not in cache:
                cache[key] = make_page(index, round_no, kb, is_changed)
            body = cache[key]
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    port_queue.put(server.server_address[1])
    server.serve_forever()


class CountingNotifier:
    """Notifier that only counts (the benchmark measures checking, not delivery)."""

    def __init__(self) -> None:
        self.sent = 0

    def notify(
        self, urls: Sequence[str], *, title: str, body: str, html: str | None = None
    ) -> None:
        self.sent += 1


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=200)
    parser.add_argument("--page-kb", type=float, default=0.15)
    parser.add_argument("--changed", type=float, default=0.1)
    args = parser.parse_args(argv)

    changed_count = round(args.pages * args.changed)
    ctx = multiprocessing.get_context("spawn")
    port_queue = ctx.Queue()
    server = ctx.Process(
        target=serve, args=(port_queue, args.pages, args.page_kb, changed_count), daemon=True
    )
    server.start()
    try:
        port = port_queue.get(timeout=30)
        return run_rounds(args, port, changed_count)
    finally:
        server.terminate()
        server.join(5)


def run_rounds(args: argparse.Namespace, port: int, changed_count: int) -> dict[str, Any]:
    from serverless_scheduler_common import JobFired, RunContext, Settings
    from serverless_scheduler_common.state import SqliteStateStore
    from serverless_scheduler_html_checker.plugin import (
        HTMLMonitorJob,
        serverless_scheduler_handle_job,
    )

    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(allow_private_networks=True, data_dir=Path(tmp))
        notifier = CountingNotifier()
        context = RunContext(
            settings=settings,
            state=SqliteStateStore(Path(tmp) / "scheduler.db"),
            notifier=notifier,
        )
        jobs = [
            HTMLMonitorJob(
                owner_id="bench",
                name=f"page {i}",
                schedule={"kind": "rate", "every": 5, "unit": "minutes"},
                url=f"{base}/p/{i}",
                notify=["json://example.invalid/"],
            )
            for i in range(args.pages)
        ]
        start = datetime(2026, 1, 1, tzinfo=UTC)
        cpu: dict[str, list[float]] = {"ok": [], "changed": [], "error": []}
        wall = time.perf_counter()
        for round_no in (1, 2):
            if round_no == 2:
                import urllib.request

                urllib.request.urlopen(
                    urllib.request.Request(f"{base}/round/2", method="POST"), timeout=10
                ).close()
            for job in jobs:
                fired = JobFired(
                    job_type=job.job_type,
                    job_id=job.job_id,
                    owner_id=job.owner_id,
                    scheduled_time=start + timedelta(minutes=5 * round_no),
                    job={},
                )
                before = time.process_time()
                outcome = serverless_scheduler_handle_job(job=job, fired=fired, context=context)
                spent = (time.process_time() - before) * 1000
                assert outcome is not None
                if round_no == 2:
                    cpu[outcome.status].append(spent)
                elif outcome.status == "error":
                    raise SystemExit(f"baseline failed: {outcome.summary}")
        wall_s = time.perf_counter() - wall

    def mean(values: list[float]) -> float | None:
        return round(sum(values) / len(values), 3) if values else None

    return {
        "pages": args.pages,
        "page_kb": args.page_kb,
        "checks": 2 * args.pages,
        "changed_detected": len(cpu["changed"]),
        "changed_expected": changed_count,
        "errors": len(cpu["error"]),
        "notifications": notifier.sent,
        "wall_s": round(wall_s, 3),
        "cpu_ms_per_check_unchanged": mean(cpu["ok"]),
        "cpu_ms_per_check_changed": mean(cpu["changed"]),
        "rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


if __name__ == "__main__":
    result = main()
    sys.stdout.write(json.dumps(result) + "\n")
