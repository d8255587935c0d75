"""Receiving while others knock: storescu sends a study to ``deid-gateway receive`` while a
flood of association requests that the receiver refuses arrives at a fixed rate.

Every allow-list entry of the gateway is bound to 127.0.0.1, where storescu sends from. The flood
comes in one of three kinds:

- ``called``: from 127.0.0.1 too, asking for another called AE title. The receiver reads each
  request and answers A-ASSOCIATE-RJ (a modality set up wrongly, retrying at once);
- ``unlisted``: from 127.0.0.2, which no entry names. The receiver closes each connection as soon
  as it accepts it (a scan, or a flood from elsewhere on the network);
- ``scattered``: the same, each connection from another address of 127.3.0.0/16 (a scan of many
  hosts at once, or a sender that takes a new IPv6 address each time): every address is new to
  the receiver's refusal ledger (:mod:`gateway.ingest.refusals`).

Each round runs every kind, and a round without a flood, in turns; the table gives the median
instances/s storescu got and its ratio to the same tree without a flood, the refusals a second
the flood got through, and the audit rows of refusals written meanwhile. ``--baseline-tree DIR``
runs the gateway of another source tree in the same rounds. ``TCP_NODELAY=1`` is set for storescu.

    .venv/bin/python -m bench.flood [--rate 300] [--rounds 2] [--baseline-tree DIR]
"""

from __future__ import annotations

import argparse
import itertools
import socket
import sqlite3
import statistics
import tempfile
import threading
import time
from ipaddress import ip_network
from pathlib import Path

from pynetdicom.pdu import A_ASSOCIATE_RQ
from pynetdicom.pdu_primitives import A_ASSOCIATE, MaximumLengthNotification
from pynetdicom.presentation import build_context

from bench.ingest import make_instances, send
from tests.peers import Gateway

#: kind -> the flood's source: an address, or a network whose addresses it takes in turn
KINDS = {"none": None, "called": "127.0.0.1", "unlisted": "127.0.0.2", "scattered": "127.3.0.0/16"}
FLOOD_THREADS = 2


def request(called: str) -> bytes:
    """An A-ASSOCIATE-RQ PDU for Verification from INTRUDER to ``called``."""
    primitive = A_ASSOCIATE()
    primitive.application_context_name = "1.2.840.10008.3.1.1.1"
    primitive.calling_ae_title, primitive.called_ae_title = "INTRUDER", called
    context = build_context("1.2.840.10008.1.1")
    context.context_id = 1
    primitive.presentation_context_definition_list = [context]
    length = MaximumLengthNotification()
    length.maximum_length_received = 16382
    primitive.user_information = [length]
    pdu = A_ASSOCIATE_RQ()
    pdu.from_primitive(primitive)
    return pdu.encode()


class Flood:
    """Threads that each open a connection every ``1 / rate`` seconds from ``source`` (an
    address, or a network: each connection from its next address), send ``data`` and wait for
    the answer or the close."""

    def __init__(self, port: int, source: str, data: bytes, rate: float):
        self.port, self.data, self.interval = port, data, FLOOD_THREADS / rate
        self._sources = itertools.cycle(str(host) for host in ip_network(source).hosts())
        self.refused = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._knock, daemon=True) for _ in range(FLOOD_THREADS)]

    def __enter__(self) -> Flood:
        for thread in self._threads:
            thread.start()
        time.sleep(1.0)  # under way before the study starts
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def _knock(self) -> None:
        due = time.perf_counter()
        while not self._stop.is_set():
            due += self.interval
            time.sleep(max(0.0, due - time.perf_counter()))
            with self._lock:
                source = next(self._sources)
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=5,
                                              source_address=(source, 0)) as sock:
                    sock.sendall(self.data)
                    sock.recv(64)
                with self._lock:
                    self.refused += 1
            except OSError:
                time.sleep(0.001)


def measure(work: Path, tree: Path | None, kind: str, files: list[Path], rate: float) -> tuple[float, float, int]:
    """instances/s, refusals/s and audit rows of refusals, for one kind of flood."""
    gateway = Gateway(work, settings={"queue": {"stable_after": 3600, "scan_interval": 1.0},
                                      "logging": {"level": "WARNING"},
                                      "ingest": {"max_associations": 16,
                                                 "allowed_callers": [{"ae_title": "STORESCU", "ip": "127.0.0.1"}]}})
    if tree is not None:
        env = gateway.env()
        gateway.env = lambda: {**env, "PYTHONPATH": str(tree)}
    gateway.start("receive")
    try:
        source = KINDS[kind]
        if source is None:
            seconds, acknowledged = send(gateway.port, gateway.ae_title, files, 1)
            refused = 0
        else:
            with Flood(gateway.port, source, request("NOT_THE_GATEWAY"), rate) as flood:
                before = flood.refused
                seconds, acknowledged = send(gateway.port, gateway.ae_title, files, 1)
                refused = flood.refused - before
        with sqlite3.connect(gateway.workdir / "var" / "gateway.db") as db:
            rows = db.execute("SELECT count(*) FROM audit_events WHERE event = 'association_rejected'").fetchone()[0]
    finally:
        gateway.stop()
    if acknowledged != len(files):
        raise RuntimeError(f"{kind}: {acknowledged} of {len(files)} acknowledged")
    return acknowledged / seconds, refused / seconds, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--rate", type=float, default=300.0, help="connections a second the flood opens")
    parser.add_argument("--baseline-tree", type=Path, help="also run the gateway of this source tree")
    args = parser.parse_args()
    trees = [("this tree", None)] + ([("baseline", args.baseline_tree.resolve())] if args.baseline_tree else [])
    results: dict[tuple[str, str], list[tuple[float, float, int]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-flood-") as tmp:
        work = Path(tmp)
        files = make_instances(work / "study", args.instances)
        for r in range(args.rounds):
            runs = [(name, tree, kind) for kind in KINDS for name, tree in trees]
            for name, tree, kind in runs[r % len(runs):] + runs[:r % len(runs)]:  # each goes first in turn
                measured = measure(work / f"r{r}-{kind}-{name.replace(' ', '_')}", tree, kind, files, args.rate)
                results.setdefault((name, kind), []).append(measured)
                print(f"round {r + 1}, {name}, flood {kind}: {measured[0]:.1f}/s, {measured[1]:.0f} refusals/s, "
                      f"{measured[2]} audit rows", flush=True)
    print(f"\n{args.instances} CT instances over one association, flood at {args.rate:.0f} connections/s, "
          f"medians of {args.rounds} rounds")
    print("| tree | flood | instances/s | ratio to no flood | refusals/s | audit rows of refusals |")
    print("|---|---|---|---|---|---|")
    medians = {key: [statistics.median(column) for column in zip(*measured)] for key, measured in results.items()}
    for (name, kind), (rate, refused, rows) in medians.items():
        calm = medians[(name, "none")][0]  # the same tree's rate without a flood, in the same rounds
        print(f"| {name} | {kind} | {rate:.1f} | {rate / calm:.2f}x | {refused:.0f} | {rows:.0f} |")


if __name__ == "__main__":
    main()
