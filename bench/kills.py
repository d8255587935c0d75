"""Kill trials: SIGKILL the gateway at random moments, restart it, and count what survived.

Each round sends a batch of instances with storescu while a seeded random delay runs, then
kills the gateway (``serve``: the receiver, and the worker, preparers and forwarder in processes
that die with it) wherever it is: mid C-STORE, mid job or mid delivery, recorded from what the
database and storescu show at that moment. After the last round the gateway runs until the
queue is empty, then once more after the leftover sweep's idle time. The table says, for every instance storescu saw
acknowledged, whether it reached the archive (it must, every one), how many C-STOREs the
archive received beyond one per instance (a kill mid-delivery may resend the instance in
flight), the half-written files left, and whether ``status`` is clean.

    .venv/bin/python -m bench.kills --rounds 20 --per-round 30 [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import sqlite3
import subprocess
import tempfile
import time
from collections import Counter
from contextlib import closing
from pathlib import Path

from pydicom import dcmread

from bench.chain import make_study
from gateway.deid.uids import remap_uid
from gateway.files import TEMPORARY_PREFIX
from tests.peers import STORESCU, Gateway, Orthanc, wait_for

def phase(database: Path, sending: bool) -> str:
    """Where the gateway was when it was killed, as far as the outside can tell."""
    if sending:
        return "mid C-STORE"
    if not database.exists():
        return "idle"
    with closing(sqlite3.connect(database, timeout=10)) as db:
        if db.execute("SELECT 1 FROM jobs WHERE state = 'running'").fetchone():
            return "mid job"
        if db.execute("SELECT 1 FROM deliveries WHERE state IN ('pending', 'sending')").fetchone():
            return "mid delivery"
        if db.execute("SELECT 1 FROM instances WHERE state IN ('received', 'queued')").fetchone():
            return "waiting for quiet"
    return "idle"


def acknowledged(output: str) -> set[str]:
    """The files storescu saw answered with Success (its -v output: each "Sending file: PATH",
    later that file's "Received Store Response (Success)")."""
    done, current = set(), None
    for line in output.splitlines():
        if "Sending file: " in line:
            current = line.split("Sending file: ", 1)[1].strip()
        elif "Received Store Response (Success" in line and current is not None:
            done.add(current)
            current = None
    return done


def _stored_twice(archive: Orthanc) -> list[set[str]]:
    """For each SOP Instance UID the archive holds more than once, the attributes that differ."""
    by_uid: dict[str, list[dict]] = {}
    for orthanc_id in archive.instances():
        tags = archive.tags(orthanc_id)
        by_uid.setdefault(tags["SOPInstanceUID"], []).append(tags)
    return [{k for k in copies[0] if any(c.get(k) != copies[0][k] for c in copies[1:])}
            for copies in by_uid.values() if len(copies) > 1]


def leftovers(root: Path) -> int:
    return sum(1 for _ in root.rglob(f"{TEMPORARY_PREFIX}*"))


def trial(work: Path, rounds: int, per_round: int, seed: int) -> dict:
    rng = random.Random(seed)
    archive = Orthanc(work / "archive").start()
    destination = {"name": "archive", "ae_title": archive.aet, "host": "127.0.0.1", "port": archive.dicom_port}
    gateway = Gateway(work / "gateway", destinations=[destination],
                      settings={"queue": {"stable_after": 0.5, "scan_interval": 0.2, "lease_seconds": 3},
                                "logging": {"level": "WARNING"}},
                      receiver_processes=None)  # the shipped default: a receiving process per core
    database = gateway.workdir / "var" / "gateway.db"
    phases: Counter = Counter()
    sent_ok: set[str] = set()
    try:
        gateway.start()
        for r in range(rounds):
            (work / f"round{r}").mkdir()
            files = make_study(work / f"round{r}", per_round)
            sender = subprocess.Popen([STORESCU, "-v", "-aet", "SCANNER", "-aec", gateway.ae_title, "127.0.0.1",
                                       str(gateway.port), *map(str, files)], stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True)
            time.sleep(rng.uniform(0.0, 0.1 * per_round))  # a round takes about that long
            phases[phase(database, sender.poll() is None)] += 1
            gateway.kill()
            output, _ = sender.communicate(timeout=120)
            sent_ok |= {str(dcmread(path, stop_before_pixels=True).SOPInstanceUID) for path in acknowledged(output)}
            gateway.start()
        expected = {remap_uid(uid, gateway.secret.encode()) for uid in sent_ok}
        archived = lambda: {archive.tags(i)["SOPInstanceUID"] for i in archive.instances()}  # noqa: E731
        wait_for(lambda: expected <= archived(), 900, interval=1, what="every acknowledged instance archived")
        time.sleep(65)  # past the sweep's idle time: files of the last kills count as abandoned
        gateway.stop()
        gateway.start()
        status = gateway.cli("status").stdout
        stores = archive.stores_received()
        twice = _stored_twice(archive)
        return {"kills": rounds, **{f"  {k}": n for k, n in sorted(phases.items())},
                "instances acknowledged": len(sent_ok),
                "acknowledged and archived": len(expected & archived()),
                "C-STOREs beyond one per archived instance": stores - len(archived()),
                "SOP instances archived under two identities": len(twice),
                "  the attributes they differ in": ", ".join(sorted({k for d in twice for k in d})) or "-",
                "half-written files left": leftovers(gateway.workdir / "var"),
                "status: failed studies": re.search(r"failed studies \((\d+)\)", status).group(1),
                "status: instances": status.splitlines()[1].split(":", 1)[1].strip()}
    finally:
        gateway.stop()
        archive.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--per-round", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    os.environ["TCP_NODELAY"] = "1"  # dcmtk (storescu, Orthanc) stalls on delayed ACKs without it
    with tempfile.TemporaryDirectory(prefix="kills-") as work:
        row = trial(Path(work), args.rounds, args.per_round, args.seed)
    for key, value in row.items():
        print(f"{key:<45} {value}")


if __name__ == "__main__":
    main()
