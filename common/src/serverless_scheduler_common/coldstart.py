"""Lambda cold start: import and wire without the cyclic garbage collector's passes.

Importing pydantic, FastAPI and boto3 and wiring a handler allocates some 80,000
objects (items) in a few hundred milliseconds. The cyclic collector runs during that
time because the allocation counters cross its thresholds: for items about 180 young
passes, 16 middle ones and a full pass over everything allocated so far. Those passes
find next to nothing to free (modules, classes, schemas and clients live as long as the
container), yet cost 6-16 % of the cold import and of the first event's wiring
(docs/deploy.md, "Cold starts"). `collector_paused` runs the cold work without them, then freezes what it created (`gc.freeze`: moved to the permanent generation), so
later collections in warm invocations do not walk those objects either. Objects created
afterwards are collected as usual.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused(*, freeze: bool = True) -> Iterator[None]:
    """Run the block without cyclic collection; on success freeze what is alive (unless
    `freeze` is False: a long-running process freezes once it is fully set up,
    `tune_for_throughput`).

    The collector's previous state is restored on exit, so nesting and use in a process
    that already disabled it (a test runner, a profiler) are harmless. A failing block
    freezes nothing: its half-built objects stay collectable.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
        if freeze:
            gc.freeze()
    finally:
        if was_enabled:
            gc.enable()


#: Young-generation threshold for long-running, allocation-heavy processes.
BUSY_GEN0_THRESHOLD = 20_000


def tune_for_throughput(gen0: int = BUSY_GEN0_THRESHOLD) -> None:
    """Collector settings for a process that handles thousands of fires per second.

    Every fire allocates a few dozen tracked objects (dicts, models) that reference
    counting frees at once; with the default threshold (700) the collector still makes a
    young pass every few fires and a full pass over everything alive every few
    thousand, about a fifth of the dispatcher's CPU per fire. Freezing what was built at
    start-up (plugins, schemas) and raising the young threshold keeps collection for
    real cycles at a fraction of that cost. The older generations keep their defaults.
    """
    gc.freeze()
    current, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(max(gen0, current), gen1, gen2)
