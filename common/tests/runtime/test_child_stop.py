"""A dispatcher child ends holding its lock when a consumer call outlives its stop."""

from __future__ import annotations

from typing import Any

import pytest

from serverless_scheduler_common.runtime import process


class _Ended(Exception):
    pass


def _end(ended: list[bool]) -> Any:
    def end() -> None:
        ended.append(True)
        raise _Ended

    return end


def test_a_consumer_call_outliving_the_stop_ends_the_child_before_its_lock_goes(
    rig: Any, make_job: Any, fire_of: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    ended: list[bool] = []
    monkeypatch.setattr(process, "_end_process", _end(ended))
    monkeypatch.setattr(process, "CHILD_STOP_TIMEOUT_S", 0.2)
    rig.alpha.block = True
    fired = fire_of(make_job(), 0)
    rig.dispatcher.publish(fired)
    assert rig.alpha.entered.wait(5)
    with pytest.raises(_Ended):
        process._stop_child(rig.dispatcher, drain=False)
    assert ended == [True]
    rig.alpha.release.set()  # the call returns; a real child would be gone by now


def test_a_child_that_stops_in_time_returns_normally(
    rig: Any, make_job: Any, fire_of: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    ended: list[bool] = []
    monkeypatch.setattr(process, "_end_process", _end(ended))
    rig.dispatcher.publish(fire_of(make_job(), 0))
    process._stop_child(rig.dispatcher, drain=True)
    assert ended == []
    assert rig.alpha.calls  # the fire ran before the stop returned
