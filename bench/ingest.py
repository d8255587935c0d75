"""Ingest throughput: dcmtk's storescu sending the same CT instances to dcmtk's storescp (no
fsync: what the network and dcmtk cost alone), to pynetdicom's storescp app (keeping nothing,
then writing files without fsync: what the library the gateway is built on costs alone), to
Orthanc, and to ``deid-gateway receive`` (which acknowledges an instance only once it is fsynced
and recorded).

Each measurement starts its receiver afresh on an empty store, then times from the start of the
first storescu to the exit of the last: one association sends every instance, or several
storescu processes at once each send their share. Peers take turns to go first from one round
to the next. ``TCP_NODELAY=1`` is set for every dcmtk process (dcmtk stalls on delayed ACKs
without it). Prints the median instances/s of each peer, its ratio to Orthanc in the same run,
the CPU each receiver spent per instance (its processes added up; storescu's own not counted),
and the gateway's peak RSS.

    .venv/bin/python -m bench.ingest --rounds 3

``--baseline-tree DIR`` adds the gateway of another source tree as one more peer, in the same
rounds (``git archive HEAD | tar -x -C DIR`` gives the one before uncommitted changes).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from pydicom import dcmread
from pydicom.data import get_testdata_file

from gateway.ingest.config import IngestConfig
from tests.ingest.memory import descendants, tree_peak_rss_mib
from tests.peers import ORTHANC, STORESCU, Gateway, Orthanc, free_port, port_open, wait_for

SEED = 37
DCMTK_ENV = {"TCP_NODELAY": "1", "PATH": "/usr/bin:/bin"}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds (user and system) of ``pid`` and every process it started that is still alive,
    with the children each has already waited for: the receiver's cost, which, unlike the rate,
    other work on a shared machine barely moves."""
    total = 0.0
    for each in [pid, *descendants(pid)]:
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue  # ended meanwhile
        total += sum(int(tick) for tick in fields[11:15]) / CLOCK_TICKS  # utime stime cutime cstime
    return total


def make_instances(folder: Path, count: int) -> list[Path]:
    """``count`` CT instances of one study, 512x512 16 bit (0.5 MB), pixels from a pinned seed."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    ds = dcmread(get_testdata_file("CT_small.dcm"))
    ds.Rows = ds.Columns = 512
    root = "1.2.826.0.1.3680043.8.498.37"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = f"{root}.1", f"{root}.2"
    files = []
    for n in range(count):
        ds.PixelData = rng.integers(0, 4096, (512, 512), dtype=np.uint16).tobytes()
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = f"{root}.3.{n + 1}"
        ds.InstanceNumber = n + 1
        files.append(folder / f"{n:05d}.dcm")
        ds.save_as(files[-1], enforce_file_format=True)
    return files


def send(port: int, called: str, files: list[Path], associations: int) -> tuple[float, int]:
    """Seconds until every storescu has exited, and how many instances were acknowledged."""
    shares = [files[a::associations] for a in range(associations)]
    started = time.perf_counter()
    senders = [subprocess.Popen([STORESCU, "-v", "-aet", "STORESCU", "-aec", called, "127.0.0.1", str(port),
                                 *map(str, share)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, env=DCMTK_ENV) for share in shares]
    outputs = [sender.communicate(timeout=600)[0] for sender in senders]
    seconds = time.perf_counter() - started
    return seconds, sum(output.count("Received Store Response (Success") for output in outputs)


class Storescp:
    """dcmtk's storescp, one process per association (--fork), writing files without fsync."""

    name = "dcmtk storescp (no fsync)"
    env: dict | None = DCMTK_ENV

    def __init__(self, work: Path):
        self.work, self.port, self.aet = work, free_port(), "STORESCP"

    @property
    def pid(self) -> int:
        return self.process.pid

    def command(self, store: Path) -> list[str]:
        return ["storescp", "--fork", "-aet", self.aet, "-od", str(store), str(self.port)]

    def __enter__(self):
        (self.work / "store").mkdir(parents=True)
        self.process = subprocess.Popen(self.command(self.work / "store"), env=self.env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: port_open(self.port), 30, interval=0.05, what=self.name)
        return self

    def __exit__(self, *exc):
        self.process.terminate()
        self.process.wait(30)


class PynetdicomStorescp(Storescp):
    """pynetdicom's own storescp app, the library the gateway receives with: it writes each
    instance to a file without fsync, and advertises the gateway's maximum PDU length. What a
    receiver built on pynetdicom costs before it makes anything durable."""

    name = "pynetdicom storescp (no fsync)"
    env = None  # this process's: the virtual environment's Python and its packages
    options: tuple[str, ...] = ()

    def command(self, store: Path) -> list[str]:
        return [sys.executable, "-m", "pynetdicom", "storescp", "-q", "-aet", self.aet,
                "-pdu", str(IngestConfig().max_pdu_length), "-od", str(store), *self.options, str(self.port)]


class PynetdicomIgnore(PynetdicomStorescp):
    """The same app with ``--ignore``: it receives every instance and keeps none. The ceiling of
    any receiver built on pynetdicom, on this machine, with storescu sending."""

    name = "pynetdicom storescp --ignore (keeps nothing)"
    options = ("--ignore",)


class OrthancPeer:
    """Orthanc as shipped by Debian, on its defaults (it syncs its storage area), not verbose."""

    name = "Orthanc"

    def __init__(self, work: Path):
        self.orthanc = Orthanc(work)

    def __enter__(self):
        orthanc = self.orthanc
        orthanc.start()  # writes the configuration; restarted below without --verbose
        orthanc.stop()
        with open(orthanc.workdir / "orthanc.log", "ab") as log:
            orthanc.process = subprocess.Popen([ORTHANC, str(orthanc.workdir / "orthanc.json")], stdout=log,
                                               stderr=subprocess.STDOUT, env={**os.environ, **DCMTK_ENV})
        wait_for(orthanc._up, 60, what="Orthanc")
        self.port, self.aet = orthanc.dicom_port, orthanc.aet
        return self

    @property
    def pid(self) -> int:
        return self.orthanc.process.pid

    def __exit__(self, *exc):
        self.orthanc.stop()


class GatewayPeer:
    """``deid-gateway receive`` on SQLite, nothing queued while it runs."""

    name = "deid-gateway receive"

    def __init__(self, work: Path):
        # The shipped scan interval (the test peer's is shorter); nothing becomes stable meanwhile.
        self.gateway = Gateway(work, settings={"queue": {"stable_after": 3600, "scan_interval": 1.0},
                                               "logging": {"level": "WARNING"},
                                               "ingest": {"max_associations": 16}},
                               receiver_processes=None)  # the shipped default: one per core
        self.peak_mib = 0.0

    def __enter__(self):
        self.gateway.start("receive")
        self.port, self.aet = self.gateway.port, self.gateway.ae_title
        return self

    @property
    def pid(self) -> int:
        return self.gateway.process.pid

    def __exit__(self, *exc):
        self.peak_mib = tree_peak_rss_mib(self.gateway.process.pid)
        self.gateway.stop()


def baseline_peer(tree: Path) -> type:
    """The gateway of another checkout (say, before a change), run from its own source tree."""

    class BaselinePeer(GatewayPeer):
        name = "deid-gateway receive (baseline)"

        def __init__(self, work: Path):
            super().__init__(work)
            env = self.gateway.env()
            self.gateway.env = lambda: {**env, "PYTHONPATH": str(tree)}

    return BaselinePeer


PEERS = [Storescp, PynetdicomIgnore, PynetdicomStorescp, OrthancPeer, GatewayPeer]


def run(work: Path, files: list[Path], rounds: int, counts: list[int]) -> tuple[dict, dict, list[float], list[str]]:
    rates: dict[tuple[str, int], list[float]] = {}
    cpu: dict[tuple[str, int], list[float]] = {}  # ms per instance
    peaks, problems = [], []
    for r in range(rounds):
        order = PEERS[r % len(PEERS):] + PEERS[:r % len(PEERS)]
        for associations in counts:
            for peer_class in order:
                folder = work / f"r{r}-a{associations}-{peer_class.__name__}"
                peer = peer_class(folder)
                with peer:
                    time.sleep(0.5)  # start-up settles
                    before = tree_cpu_seconds(peer.pid)
                    seconds, acknowledged = send(peer.port, peer.aet, files, associations)
                    time.sleep(0.2)  # storescp --fork waits for its children
                    used = tree_cpu_seconds(peer.pid) - before
                shutil.rmtree(folder, ignore_errors=True)
                if acknowledged != len(files):
                    problems.append(f"{peer.name}, {associations} assoc.: {acknowledged}/{len(files)} acknowledged")
                rates.setdefault((peer.name, associations), []).append(acknowledged / seconds)
                cpu.setdefault((peer.name, associations), []).append(1000 * used / len(files))
                if type(peer) is GatewayPeer:
                    peaks.append(peer.peak_mib)
                print(f"round {r + 1}, {associations} assoc., {peer.name}: {acknowledged / seconds:.1f}/s",
                      flush=True)
    return rates, cpu, peaks, problems


def table(rates: dict, cpu: dict, peaks: list[float], counts: list[int], instances: int, rounds: int) -> str:
    lines = [f"{instances} CT instances 512x512 16 bit, medians of {rounds} rounds, instances/s (ratio to Orthanc)",
             f"{'path':<58}" + "".join(f"{f'{n} assoc.':>20}" for n in counts)]
    for peer_class in PEERS:
        cells = ""
        for n in counts:
            median = statistics.median(rates[(peer_class.name, n)])
            orthanc = statistics.median(rates[(OrthancPeer.name, n)])
            cells += f"{f'{median:.0f} ({median / orthanc:.2f}x)':>20}"
        lines.append(f"{'storescu -> ' + peer_class.name:<58}{cells}")
    lines += ["", f"CPU ms per instance, the receiver's processes added up (medians of {rounds} rounds)",
              f"{'path':<58}" + "".join(f"{f'{n} assoc.':>20}" for n in counts)]
    for peer_class in PEERS:
        cells = "".join(f"{statistics.median(cpu[(peer_class.name, n)]):>20.1f}" for n in counts)
        lines.append(f"{'storescu -> ' + peer_class.name:<58}{cells}")
    lines.append(f"gateway peak RSS, its processes added up: {max(peaks):.0f} MiB")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--associations", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--json", type=Path, help="also write every rate here")
    parser.add_argument("--baseline-tree", type=Path,
                        help="also run the gateway of this source tree (e.g. an export of the commit before a change)")
    args = parser.parse_args()
    if args.baseline_tree:
        PEERS.append(baseline_peer(args.baseline_tree.resolve()))
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        work = Path(tmp)
        files = make_instances(work / "study", args.instances)
        rates, cpu, peaks, problems = run(work, files, args.rounds, args.associations)
    print(table(rates, cpu, peaks, args.associations, args.instances, args.rounds))
    for problem in problems:
        print("NOT ALL ACKNOWLEDGED:", problem)
    if args.json:
        args.json.write_text(json.dumps({f"{name}|{n}": r for (name, n), r in rates.items()}, indent=1))


if __name__ == "__main__":
    main()
