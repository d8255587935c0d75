"""The receiver holds a few PDUs in memory whatever a sender sends (issue 35).

Against the gateway's receiver as its own process, with dcmtk's storescu as the sender (and
pynetdicom where storescu would re-encode: it inflates a deflated file before sending it). The
receiver's peak resident memory is reset before each send and read after it (Linux's
``clear_refs`` and ``VmHWM``), so each figure is that one transfer's.
"""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

import pytest
from pydicom.filereader import read_file_meta_info

from tests.ingest.memory import peak_rss_mib, reset_peak, rss_mib
from tests.ingest.payloads import declared_huge_rle, deflate_bomb, large_instance
from tests.ingest.senders import send_as_is, storescu_aborted
from tests.peers import storescu

pytestmark = pytest.mark.filterwarnings("ignore")

MIB = 1024 * 1024


@pytest.fixture
def system_tmp(tmp_path, monkeypatch) -> Path:
    """The system temporary folder of every process started here, watched for strays."""
    folder = tmp_path / "system-tmp"
    folder.mkdir()
    monkeypatch.setenv("TMPDIR", str(folder))
    monkeypatch.setenv("TCP_NODELAY", "1")  # dcmtk: no Nagle delay on loopback
    return folder


def _receiver(gateway_factory, **ingest):
    """The receiver alone, in its own process: the memory measured is the receiver's."""
    return gateway_factory([], ingest=ingest).start("receive")


def _peak_during(gateway, send) -> tuple[object, float, float]:
    """Run ``send``; return its result, the receiver's resident MiB before, and its peak during."""
    pid = gateway.process.pid
    reset_peak(pid)
    before = rss_mib(pid)
    result = send()
    return result, before, peak_rss_mib(pid)


def _quarantine(gateway) -> str:
    return gateway.cli("quarantine").stdout


def _spooled(gateway) -> list[Path]:
    spool = gateway.workdir / "var" / "spool"
    return [p for p in spool.rglob("*") if p.is_file()]


def test_a_deflate_bomb_is_refused_in_bounded_memory(gateway_factory, tmp_path, system_tmp):
    gateway = _receiver(gateway_factory, max_inflated_bytes=64 * MIB)
    bomb = deflate_bomb(tmp_path / "bomb.dcm", 1024)  # 1 GiB of zeros
    assert bomb.stat().st_size < 1.2 * MIB

    status, before, peak = _peak_during(gateway, lambda: send_as_is(gateway.port, bomb))

    print(f"deflate bomb: receiver {before:.0f} MiB before, peak {peak:.0f} MiB")
    assert status == 0xA700
    assert peak - before < 32, f"the receiver grew by {peak - before:.0f} MiB"
    assert "deflated dataset inflates beyond ingest.max_inflated_bytes" in _quarantine(gateway)
    [kept] = (gateway.workdir / "var" / "quarantine").rglob("*.bin")
    assert _body_digest(kept) == _body_digest(bomb)  # kept as received, still deflated
    assert _spooled(gateway) == [] and list(system_tmp.iterdir()) == []


def test_an_oversized_instance_is_stopped_early(gateway_factory, tmp_path, study, system_tmp):
    gateway = _receiver(gateway_factory, max_instance_bytes=1_000_000)
    large = large_instance(tmp_path / "large.dcm", 50)

    sent, before, peak = _peak_during(gateway, lambda: storescu(gateway.port, [large]))

    print(f"oversized instance: receiver {before:.0f} MiB before, peak {peak:.0f} MiB")
    assert storescu_aborted(sent), (sent.stdout + sent.stderr)[-2000:]
    assert peak - before < 16, f"the receiver grew by {peak - before:.0f} MiB for a 50 MB instance"
    assert "instance larger than ingest.max_instance_bytes" in _quarantine(gateway)
    assert not list((gateway.workdir / "var" / "quarantine").rglob("*.bin"))  # no bytes kept
    assert _spooled(gateway) == [] and list(system_tmp.iterdir()) == []
    assert "refused" in gateway.cli("audit", "list").stdout

    # The receiver goes on: the next association is served as ever.
    assert storescu(gateway.port, study.files[:2]).returncode == 0
    assert len([p for p in _spooled(gateway) if p.suffix == ".dcm"]) == 2


def test_an_image_declared_huge_is_refused_at_ingest(gateway_factory, tmp_path, system_tmp):
    gateway = _receiver(gateway_factory)
    wide = declared_huge_rle(tmp_path / "wide.dcm", 20000, 20000)  # 2.4 GB declared
    deep = declared_huge_rle(tmp_path / "deep.dcm", 65535, 65535, frames=1000, samples=1, bits=8)
    assert wide.stat().st_size < 2000

    for image in (wide, deep):  # storescu stops at the first refusal: one at a time
        sent = storescu(gateway.port, [image])
        assert "Refused: OutOfResources" in sent.stdout + sent.stderr, sent.stderr[-2000:]
    entries = [line for line in _quarantine(gateway).splitlines() if "ingest" in line]
    assert len(entries) == 2
    assert all("declared image larger than ingest.max_pixel_bytes" in line for line in entries)
    assert len(list((gateway.workdir / "var" / "quarantine").rglob("*.bin"))) == 2
    assert not [p for p in _spooled(gateway) if p.suffix == ".dcm"]


def _body_digest(path: Path) -> str:
    """SHA-256 of the data set after the file meta: what travelled over the wire."""
    offset = 132 + 12 + read_file_meta_info(path).FileMetaInformationGroupLength
    digest = hashlib.sha256()
    with path.open("rb") as f:
        f.seek(offset)
        while chunk := f.read(MIB):
            digest.update(chunk)
    return digest.hexdigest()


def test_a_large_instance_is_received_exactly_in_bounded_memory(gateway_factory, tmp_path, system_tmp):
    gateway = _receiver(gateway_factory)
    large = large_instance(tmp_path / "large.dcm", 40)

    sent, before, peak = _peak_during(gateway, lambda: storescu(gateway.port, [large]))

    print(f"40 MiB instance: receiver {before:.0f} MiB before, peak {peak:.0f} MiB")
    assert sent.returncode == 0, sent.stderr
    assert peak - before < 24, f"the receiver grew by {peak - before:.0f} MiB for a 40 MiB instance"
    [spooled] = [p for p in _spooled(gateway) if p.suffix == ".dcm"]
    assert _body_digest(spooled) == _body_digest(large)
    assert stat.S_IMODE(spooled.stat().st_mode) == 0o600
    receiving = gateway.workdir / "var" / "spool" / "receiving"
    assert stat.S_IMODE(receiving.stat().st_mode) == 0o700
    assert list(receiving.iterdir()) == [] and list(system_tmp.iterdir()) == []
