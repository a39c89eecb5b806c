"""One local mode per data directory: `serve.lock`."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from serverless_scheduler.datadir import DataDirBusyError, hold_lock, lock_path
from serverless_scheduler.local import build_local_system, serve
from serverless_scheduler_common import Settings


def test_the_lock_has_one_holder_and_goes_with_it(tmp_path: Path) -> None:
    first = hold_lock(tmp_path)
    with pytest.raises(DataDirBusyError, match="already running"):
        hold_lock(tmp_path)
    first.close()
    hold_lock(tmp_path).close()  # free again once the holder let go


def test_a_killed_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    code = (
        "import sys, time; from serverless_scheduler.datadir import hold_lock; "
        "h = hold_lock(sys.argv[1]); print('held', flush=True); time.sleep(60)"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "held"
        with pytest.raises(DataDirBusyError):
            hold_lock(tmp_path)
    finally:
        child.kill()  # kill -9: the kernel drops the lock
        child.wait(10)
    hold_lock(tmp_path).close()
    assert lock_path(tmp_path).exists()


def test_a_started_system_holds_the_lock_until_it_stops(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, dispatcher_process=False)
    system = build_local_system(settings)
    other = build_local_system(settings)
    system.start()
    try:
        with pytest.raises(DataDirBusyError):
            other.start()  # a second engine over the same schedules would fire twice
        assert not other._started
    finally:
        system.stop()
    other.start()  # the first one stopped: the directory is free
    other.stop()


def test_serve_refuses_a_busy_directory_before_it_binds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCHEDULER_DISPATCHER_PROCESS", "false")
    # serve() sets up the root logger for a server process; the tests keep theirs.
    monkeypatch.setattr("serverless_scheduler.local.configure_logging", lambda settings: None)
    held = hold_lock(tmp_path)
    try:
        assert serve(host="127.0.0.1", port=1, data_dir=str(tmp_path)) == 2
    finally:
        held.close()
    err = capsys.readouterr().err
    assert "already running" in err and str(tmp_path) in err


def test_serve_refuses_a_busy_port_before_it_announces_and_keeps_no_unshown_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    from serverless_scheduler.commands.status import collect
    from serverless_scheduler_items.auth import SqliteTokenStore

    monkeypatch.setenv("SCHEDULER_DISPATCHER_PROCESS", "false")
    monkeypatch.setattr("serverless_scheduler.local.configure_logging", lambda settings: None)
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        assert serve(host="127.0.0.1", port=port, data_dir=str(tmp_path)) == 2
    out, err = capsys.readouterr()
    assert f"cannot listen on 127.0.0.1:{port}" in err and "--port" in err
    assert "running at" not in out and "sst_" not in out  # nothing announced
    # The admin token it created was never shown: gone, so the next start shows one.
    assert SqliteTokenStore(tmp_path / "scheduler.db").count() == 0
    assert build_local_system(Settings(data_dir=tmp_path)).admin_token is not None
    assert collect(tmp_path)["running"] is False  # the directory's lock was let go


def test_serve_announces_nothing_when_the_system_cannot_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from serverless_scheduler.commands.status import collect
    from serverless_scheduler.local import LocalSystem
    from serverless_scheduler_items.auth import SqliteTokenStore

    def broken_start(self: LocalSystem) -> None:
        raise RuntimeError("the timer engine could not start")

    monkeypatch.setenv("SCHEDULER_DISPATCHER_PROCESS", "false")
    monkeypatch.setattr("serverless_scheduler.local.configure_logging", lambda settings: None)
    monkeypatch.setattr(LocalSystem, "start", broken_start)
    with socket.create_server(("127.0.0.1", 0)) as free:
        port = free.getsockname()[1]
    try:
        code = serve(host="127.0.0.1", port=port, data_dir=str(tmp_path))
    except SystemExit as exc:  # uvicorn exits with its startup-failure code itself
        code = exc.code
    assert code == 3
    out = capsys.readouterr().out
    assert "running at" not in out and "sst_" not in out
    # The admin token it created was never shown: gone, so the next start shows one.
    assert SqliteTokenStore(tmp_path / "scheduler.db").count() == 0
    assert collect(tmp_path)["running"] is False


def test_a_clean_stop_leaves_every_commit_in_the_main_file(tmp_path: Path) -> None:
    """After a clean stop `scheduler.db` alone is a copy of the data (docs/operations.md,
    backups): the write-ahead log is folded into it and emptied."""
    import shutil
    import sqlite3

    from serverless_scheduler_example.plugin import ExampleJob

    system = build_local_system(Settings(data_dir=tmp_path, dispatcher_process=False))
    system.start()
    job = system.repo.create(
        ExampleJob(owner_id="alice", name="kept", schedule={"kind": "rate", "every": 5})
    )
    system.stop()

    wal = tmp_path / "scheduler.db-wal"
    assert not wal.exists() or wal.stat().st_size == 0
    copy = tmp_path / "copy"
    copy.mkdir()
    shutil.copy(tmp_path / "scheduler.db", copy / "scheduler.db")  # the main file only
    conn = sqlite3.connect(copy / "scheduler.db")
    try:
        rows = conn.execute("SELECT job_id FROM jobs").fetchall()
    finally:
        conn.close()
    assert rows == [(job.job_id,)]
