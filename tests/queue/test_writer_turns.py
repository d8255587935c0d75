"""Writers of several processes take turns on one lock beside the SQLite file, so that the one
a C-STORE answer waits for goes in as soon as the database is free, rather than after SQLite's
busy handler has slept up to 100 ms between tries; and the scheduler's looks take no turn at all
when there is nothing to do."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from gateway import db as database
from gateway.db import TURNS_SUFFIX, Database
from gateway.turns import ProcessTurns
from gateway.queue.config import QueueConfig
from gateway.queue.stability import queue_stable_studies, reclaim_expired_leases
from tests.peers import wait_for

ROOT = Path(__file__).resolve().parents[2]

#: Another process's writer: takes its turn on the lock file, says so, holds it until told.
HOLDER = """
import sys, time
from pathlib import Path
sys.path.insert(0, {root!r})
from gateway.turns import ProcessTurns
turns = ProcessTurns(Path({lock!r}))
assert turns.acquire(time.monotonic() + 10)
Path({holding!r}).touch()
while not Path({release!r}).exists():
    time.sleep(0.01)
"""


def _hold_turn_elsewhere(tmp_path: Path, db_file: Path) -> subprocess.Popen:
    script = HOLDER.format(root=str(ROOT), lock=str(db_file) + TURNS_SUFFIX, holding=str(tmp_path / "holding"),
                           release=str(tmp_path / "release"))
    holder = subprocess.Popen([sys.executable, "-c", script])
    wait_for((tmp_path / "holding").exists, 30, what="the other process holding its turn")
    return holder


def _write_in_background(db: Database) -> threading.Event:
    written = threading.Event()

    def write() -> None:
        with db.session() as session:
            session.execute(text("CREATE TABLE IF NOT EXISTS t (x INTEGER)"))
        written.set()

    threading.Thread(target=write, daemon=True).start()
    return written


def test_a_writer_waits_for_the_turn_another_process_holds_and_goes_in_when_it_is_given_back(tmp_path):
    db_file = tmp_path / "gateway.db"
    db = Database(f"sqlite:///{db_file}")
    holder = _hold_turn_elsewhere(tmp_path, db_file)
    try:
        written = _write_in_background(db)
        assert not written.wait(0.5)  # SQLite itself is free: only the turn holds it up
        (tmp_path / "release").touch()
        assert written.wait(10)
    finally:
        holder.wait(30)


def test_the_turn_of_a_process_killed_while_holding_it_is_given_back(tmp_path):
    db_file = tmp_path / "gateway.db"
    db = Database(f"sqlite:///{db_file}")
    holder = _hold_turn_elsewhere(tmp_path, db_file)
    written = _write_in_background(db)
    assert not written.wait(0.5)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(30)
    assert written.wait(10)


def test_a_turn_not_given_within_the_deadline_is_given_up_and_not_kept_when_it_comes(tmp_path):
    lock = tmp_path / "gateway.db-turns"
    # Three open files: three processes, as far as flock goes.
    first, second, third = ProcessTurns(lock), ProcessTurns(lock), ProcessTurns(lock)
    assert first.acquire(time.monotonic() + 1)
    assert not second.acquire(time.monotonic() + 0.05)  # its taker still waits in flock
    first.release()  # the taker gets it for nobody, and hands it back
    assert third.acquire(time.monotonic() + 10)
    third.release()
    assert second.acquire(time.monotonic() + 10)


def test_the_lock_file_is_private_and_made_only_by_a_writer(tmp_path):
    db_file = tmp_path / "gateway.db"
    db = Database(f"sqlite:///{db_file}")
    lock = Path(str(db_file) + TURNS_SUFFIX)
    with db.reading() as session:
        session.execute(text("SELECT 1"))
    assert not lock.exists()
    db.create_schema()
    assert lock.stat().st_mode & 0o777 == 0o600


@pytest.fixture
def quick_busy_timeout(monkeypatch):
    monkeypatch.setattr(database, "BUSY_SECONDS", 1)


def test_a_scheduler_tick_with_nothing_to_do_takes_no_write_lock(tmp_path, quick_busy_timeout):
    db_file = tmp_path / "gateway.db"
    db = Database(f"sqlite:///{db_file}")
    db.create_schema()
    other = sqlite3.connect(db_file, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # SQLite's write lock, held by a writer that takes no turns
    try:
        # In a write transaction, each would wait out the busy timeout and fail.
        assert queue_stable_studies(db, QueueConfig(stable_after=0.01), pixels_enabled=False) == 0
        assert reclaim_expired_leases(db, QueueConfig()) == 0
    finally:
        other.rollback()
        other.close()
