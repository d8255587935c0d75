"""Acknowledgement latency while people look: C-STORE round trips to a running gateway, alone and
while ``status`` and the web page are polled by readers that hold their transaction open.

Before readers took no write lock, a reader holding its session for 6 s delayed a C-STORE
acknowledgement by 4.9 s. Each instance is sent on one association by pynetdicom, and timed
from request to response.

    .venv/bin/python -m bench.ack_latency --instances 60 --hold 6
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

from pydicom import dcmread
from pydicom.data import get_testdata_file
from pynetdicom import AE

from gateway.audit.report import status_lines
from gateway.db import Database
from tests.peers import Gateway, wait_for


def round_trips(port: int, called: str, count: int, prefix: str) -> list[float]:
    ds = dcmread(get_testdata_file("CT_small.dcm"))
    ae = AE(ae_title="SCANNER")
    ae.add_requested_context(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)
    assoc = ae.associate("127.0.0.1", port, ae_title=called)
    times = []
    try:
        for n in range(count):
            ds.SOPInstanceUID = f"1.2.826.0.1.3680043.8.498.55.{prefix}.{n}"
            started = time.perf_counter()
            status = assoc.send_c_store(ds)
            times.append(time.perf_counter() - started)
            assert status.Status == 0
            time.sleep(0.05)
    finally:
        assoc.release()
    return times


def poll(database: str, hold: float, stop: threading.Event) -> None:
    """A status page being read: a reading session that stays open ``hold`` seconds."""
    db = Database(database)
    while not stop.is_set():
        with db.reading() as session:
            status_lines(session)
            stop.wait(hold)
    db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", type=int, default=60)
    parser.add_argument("--hold", type=float, default=6.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ack-") as tmp:
        gateway = Gateway(Path(tmp) / "gateway", settings={"queue": {"stable_after": 3600},
                                                          "logging": {"level": "WARNING"}}).start()
        database = f"sqlite:///{gateway.workdir / 'var' / 'gateway.db'}"
        try:
            wait_for(lambda: (gateway.workdir / "var" / "gateway.db").exists(), 30)
            rows = {"no reader": round_trips(gateway.port, gateway.ae_title, args.instances, "1")}
            stop = threading.Event()
            readers = [threading.Thread(target=poll, args=(database, args.hold, stop)) for _ in range(2)]
            for reader in readers:
                reader.start()
            try:
                rows[f"2 readers holding {args.hold:g} s"] = round_trips(gateway.port, gateway.ae_title,
                                                                        args.instances, "2")
            finally:
                stop.set()
                for reader in readers:
                    reader.join()
        finally:
            gateway.stop()
    print(f"C-STORE round trips of CT_small.dcm, {args.instances} per row, milliseconds")
    print(f"{'while':<26} {'median':>8} {'95th':>8} {'max':>8}")
    for name, times in rows.items():
        ms = sorted(t * 1000 for t in times)
        print(f"{name:<26} {statistics.median(ms):>8.1f} {ms[int(len(ms) * 0.95) - 1]:>8.1f} {ms[-1]:>8.1f}")


if __name__ == "__main__":
    main()
