"""Nothing is left behind: a write that a crash cut short leaves a temporary file only, and the
next start removes it, counts it in the audit and shows it in ``status``."""

from __future__ import annotations

import os
import threading
import time

from gateway.audit.report import status_lines
from gateway.config import load_config
from gateway.files import TEMPORARY_PREFIX, hashed_path, sweep_leftovers, write_durably
from gateway.service import open_runtime, sweep_leftovers_audited


def _abandoned(folder, age: float):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{TEMPORARY_PREFIX}abc123"
    path.write_bytes(b"half of an instance")
    os.utime(path, (time.time() - age, time.time() - age))
    return path


def test_only_files_idle_longer_than_a_transfer_are_removed(tmp_path):
    old = _abandoned(tmp_path / "spool" / "ab", age=600)
    fresh = _abandoned(tmp_path / "outbox" / "cd", age=1)  # perhaps another process's, in progress
    done = hashed_path(tmp_path / "spool", "ab" * 32)
    write_durably(done, b"a whole instance")
    assert sweep_leftovers([tmp_path / "spool", tmp_path / "outbox"], older_than=120) == 1
    assert not old.exists() and fresh.exists() and done.exists()


def test_the_sweep_at_start_is_audited_and_shown_in_status(tmp_path):
    config = load_config(None, {"storage": {"root": str(tmp_path)},
                                "database": {"url": f"sqlite:///{tmp_path / 'gateway.db'}"}})
    runtime = open_runtime(config)
    _abandoned(config.storage.spool / "ab", age=600)
    _abandoned(config.storage.spool / "intermediate" / "cd", age=600)
    _abandoned(config.storage.outbox / "basic" / "ef", age=600)
    assert sweep_leftovers_audited(runtime) == 3
    with runtime.db.reading() as session:
        assert "half-written files removed after crashes: 3" in status_lines(session)
    assert not list(tmp_path.rglob(f"{TEMPORARY_PREFIX}*"))


def test_the_gateway_sweeps_when_it_starts(tmp_path):
    from gateway.service import run

    config = load_config(None, {"storage": {"root": str(tmp_path)},
                                "database": {"url": f"sqlite:///{tmp_path / 'gateway.db'}"},
                                "pixels": {"enabled": False}})
    left = _abandoned(config.storage.spool / "ab", age=600)
    stop = threading.Event()
    serving = threading.Thread(target=run, args=(config, ("schedule",)), kwargs={"stop": stop})
    serving.start()
    deadline = time.time() + 30
    while left.exists() and time.time() < deadline:
        time.sleep(0.05)
    stop.set()
    serving.join(30)
    assert not left.exists()
