"""`collector_paused`: no cyclic collection inside, state restored, freeze only on success;
`tune_for_throughput`: long-running processes collect less often."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from serverless_scheduler_common.coldstart import collector_paused


@pytest.fixture(autouse=True)
def _restore_collector() -> Iterator[None]:
    was_enabled = gc.isenabled()
    yield
    gc.unfreeze()
    if was_enabled:
        gc.enable()
    else:
        gc.disable()


def test_the_block_runs_without_the_collector_and_what_it_built_is_frozen() -> None:
    gc.enable()
    gc.unfreeze()
    with collector_paused():
        assert not gc.isenabled()
        built = [[i] for i in range(1000)]
    assert gc.isenabled()
    assert gc.get_freeze_count() >= len(built)
    young = {id(obj) for generation in range(3) for obj in gc.get_objects(generation)}
    assert not any(id(item) in young for item in built)  # moved to the permanent generation


def test_a_failing_block_freezes_nothing_and_restores_the_collector() -> None:
    gc.enable()
    gc.unfreeze()
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError("wiring failed")
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0


def test_a_collector_disabled_before_stays_disabled() -> None:
    gc.disable()
    with collector_paused():
        pass
    assert not gc.isenabled()


def test_tuning_for_throughput_freezes_start_up_objects_and_collects_young_objects_less_often() -> (
    None
):
    from serverless_scheduler_common.coldstart import BUSY_GEN0_THRESHOLD, tune_for_throughput

    saved = gc.get_threshold()
    gc.unfreeze()
    try:
        gc.set_threshold(700, 10, 10)
        built = [[i] for i in range(1000)]
        tune_for_throughput()
        assert gc.get_freeze_count() >= len(built)
        assert gc.get_threshold() == (BUSY_GEN0_THRESHOLD, 10, 10)  # older generations kept
        gc.set_threshold(50_000, 10, 10)
        tune_for_throughput()
        assert gc.get_threshold()[0] == 50_000  # never lowered
    finally:
        gc.set_threshold(*saved)
