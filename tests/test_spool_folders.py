"""The spool's 256 folders are made when the gateway opens its storage, not when the first
instance to land in each arrives: no acknowledgement waits for a folder to be made and synced."""

from __future__ import annotations

import stat

from gateway.config import load_config
from gateway.files import hashed_path, make_hashed_folders
from gateway.service import open_runtime


def test_opening_the_storage_makes_every_folder_of_the_spool(tmp_path):
    config = load_config(overrides={"storage": {"root": str(tmp_path / "var")}})
    open_runtime(config).db.dispose()
    spool = config.storage.spool
    folders = sorted(p.name for p in spool.iterdir() if p.is_dir() and p.name != "receiving")
    assert folders == [f"{n:02x}" for n in range(256)]
    assert {stat.S_IMODE((spool / name).stat().st_mode) for name in folders} == {0o700}
    assert hashed_path(spool, "ab" * 32).parent.is_dir()


def test_making_them_again_leaves_what_they_hold(tmp_path):
    make_hashed_folders(tmp_path / "spool")
    kept = hashed_path(tmp_path / "spool", "cd" * 32)
    kept.write_bytes(b"an instance")
    make_hashed_folders(tmp_path / "spool")
    assert kept.read_bytes() == b"an instance"
    assert len(list((tmp_path / "spool").iterdir())) == 256
