"""The spool's 256 folders are made when the receiver starts, not when the first instance to
land in each arrives: no acknowledgement waits for a folder to be made and synced. Commands that
only read (status, audit) make none."""

from __future__ import annotations

import stat
import threading

from gateway.config import load_config
from gateway.files import hashed_path, make_hashed_folders
from gateway.service import open_runtime, run
from tests.peers import free_port, port_open, wait_for


def test_the_receiver_makes_every_folder_of_the_spool_before_it_listens(tmp_path):
    config = load_config(overrides={"storage": {"root": str(tmp_path / "var")},
                                    "ingest": {"port": free_port(), "processes": 1}})
    stop = threading.Event()
    runner = threading.Thread(target=run, args=(config, ("receive",)), kwargs={"stop": stop})
    runner.start()
    try:
        wait_for(lambda: port_open(config.ingest.port), 30, interval=0.05, what="the receiver")
    finally:
        stop.set()
        runner.join(30)
    spool = config.storage.spool
    folders = sorted(p.name for p in spool.iterdir() if p.is_dir() and p.name != "receiving")
    assert folders == [f"{n:02x}" for n in range(256)]
    assert {stat.S_IMODE((spool / name).stat().st_mode) for name in folders} == {0o700}
    assert hashed_path(spool, "ab" * 32).parent.is_dir()


def test_a_command_that_only_reads_makes_none(tmp_path):
    config = load_config(overrides={"storage": {"root": str(tmp_path / "var")}})
    open_runtime(config).db.dispose()
    assert list(config.storage.spool.iterdir()) == []


def test_making_them_again_leaves_what_they_hold(tmp_path):
    make_hashed_folders(tmp_path / "spool")
    kept = hashed_path(tmp_path / "spool", "cd" * 32)
    kept.write_bytes(b"an instance")
    make_hashed_folders(tmp_path / "spool")
    assert kept.read_bytes() == b"an instance"
    assert len(list((tmp_path / "spool").iterdir())) == 256
