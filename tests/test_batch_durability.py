"""``deid-gateway deid`` makes its outputs durable once, at the end, and says so when the disk
did not take them (gateway.files.sync_filesystem)."""

from __future__ import annotations

import ctypes
import errno
import os
from pathlib import Path

import pytest
from pydicom.data import get_testdata_file

from gateway import files
from gateway.cli import main


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path, Path]:
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in ("CT_small.dcm", "MR_small.dcm"):
        (inputs / name).write_bytes(Path(get_testdata_file(name)).read_bytes())
    config = tmp_path / "config.yaml"
    config.write_text(f"storage:\n  root: {tmp_path / 'var'}\npixels:\n  enabled: false\n")
    return inputs, tmp_path / "out", config


class FakeSyncfs:
    """Stands for the C library's ``syncfs``: notes the filesystem of each call, fails if told to."""

    def __init__(self, fails_with: int = 0):
        self.filesystems: list[int] = []
        self.fails_with = fails_with

    def __call__(self, fd: int) -> int:
        self.filesystems.append(os.fstat(fd).st_dev)
        if self.fails_with:
            ctypes.set_errno(self.fails_with)
            return -1
        return 0


def deid(inputs: Path, out: Path, config: Path) -> int:
    return main(["deid", str(inputs), str(out), "--config", str(config), "--quiet", "--jobs", "1"])


@pytest.mark.skipif(files._syncfs() is None, reason="no syncfs in this C library: os.sync is used")
def test_the_syncfs_of_this_machine_syncs_a_folder_s_filesystem(tmp_path):
    (tmp_path / "written").write_bytes(b"x" * 4096)
    files.sync_filesystem(tmp_path)  # raises if the kernel said no


def test_a_batch_syncs_the_filesystem_of_its_outputs_once_at_the_end(folders, monkeypatch, capsys):
    inputs, out, config = folders
    syncfs = FakeSyncfs()
    monkeypatch.setattr(files, "_syncfs", lambda: syncfs)
    assert deid(inputs, out, config) == 0
    assert len(list(out.rglob("*.dcm"))) == 2
    assert syncfs.filesystems == [os.stat(out).st_dev]


def test_a_batch_whose_outputs_the_disk_did_not_take_says_so_and_exits_1(folders, monkeypatch, capsys):
    inputs, out, config = folders
    monkeypatch.setattr(files, "_syncfs", lambda: FakeSyncfs(fails_with=errno.EIO))
    assert deid(inputs, out, config) == 1
    message = capsys.readouterr().err
    assert "the outputs could not all be written to disk (EIO)" in message
    assert str(inputs) not in message and str(out) not in message  # a code, never a path


def test_a_batch_that_wrote_nothing_has_nothing_to_sync(tmp_path, folders, monkeypatch):
    _, out, config = folders
    empty = tmp_path / "empty"
    empty.mkdir()
    syncfs = FakeSyncfs(fails_with=errno.EIO)
    monkeypatch.setattr(files, "_syncfs", lambda: syncfs)
    assert deid(empty, out, config) == 0
    assert syncfs.filesystems == []
