"""What associations that send nothing cost ``deid-gateway receive`` in CPU.

A PACS may hold associations open between studies. Each one has two threads in the gateway; if
they poll, they take CPU from the work and fight it for the GIL. For each count, a fresh gateway
accepts that many associations from a pynetdicom client in another process, which then sends
nothing; the gateway's CPU time is read over ``--seconds`` while they stay open. Prints the median
share of one core over the rounds, and how many associations a gateway accepted when it refused
some (each gateway allows 16; before commit "A connection closed before any association request
frees its place at once", the test peers' readiness probe held one place for a minute).

    .venv/bin/python -m bench.idle_associations --rounds 3

``--baseline-tree DIR`` adds the gateway of another source tree (``git archive REV | tar -x -C
DIR``), measured in the same rounds.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from bench.ingest import GatewayPeer, baseline_peer

CLIENT = r"""
import sys, time
from pynetdicom import AE
port, called, count = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
ae = AE(ae_title="STORESCU")
ae.add_requested_context("1.2.840.10008.1.1")
assocs = [ae.associate("127.0.0.1", port, ae_title=called) for _ in range(count)]
print(sum(a.is_established for a in assocs), flush=True)
sys.stdin.read()
for a in assocs:
    a.release()
"""


def cpu_share(peer_class: type, work: Path, associations: int, seconds: float) -> tuple[float, int]:
    """Share of one core the gateway used while ``associations`` idle associations were open,
    and how many of them it accepted."""
    peer = peer_class(work)
    with peer:
        time.sleep(1.0)
        gateway = psutil.Process(peer.gateway.process.pid)
        client = subprocess.Popen([sys.executable, "-c", CLIENT, str(peer.port), peer.aet, str(associations)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        established = int(client.stdout.readline())
        time.sleep(1.0)
        before, started = sum(gateway.cpu_times()[:2]), time.monotonic()
        time.sleep(seconds)
        used = sum(gateway.cpu_times()[:2]) - before
        elapsed = time.monotonic() - started
        client.communicate("", timeout=60)
    return used / elapsed, established


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--associations", type=int, nargs="+", default=[0, 1, 8, 16])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--baseline-tree", type=Path)
    args = parser.parse_args()
    peers = [GatewayPeer] + ([baseline_peer(args.baseline_tree.resolve())] if args.baseline_tree else [])
    shares: dict[tuple[str, int], list[float]] = {}
    accepted: dict[tuple[str, int], int] = {}
    with tempfile.TemporaryDirectory(prefix="bench-idle-") as tmp:
        for r in range(args.rounds):
            for count in args.associations:
                for peer_class in peers[r % len(peers):] + peers[:r % len(peers)]:
                    share, established = cpu_share(peer_class, Path(tmp) / f"r{r}-{count}-{peer_class.__name__}",
                                                   count, args.seconds)
                    shares.setdefault((peer_class.name, count), []).append(share)
                    accepted[(peer_class.name, count)] = min(established, accepted.get((peer_class.name, count), count))
                    print(f"round {r + 1}, {count} idle assoc., {peer_class.name}: {share:.1%} of a core "
                          f"({established} accepted)", flush=True)
    print(f"gateway CPU while associations stay open and idle, median of {args.rounds} rounds of "
          f"{args.seconds:.0f} s, share of one core")
    print(f"{'gateway':<40}" + "".join(f"{f'{n} assoc.':>12}" for n in args.associations)
          + "   (n): only n accepted")
    for peer_class in peers:
        cells = "".join(f"{_cell(statistics.median(shares[(peer_class.name, n)]), accepted[(peer_class.name, n)], n):>12}"
                        for n in args.associations)
        print(f"{peer_class.name:<40}{cells}")


def _cell(share: float, accepted: int, asked: int) -> str:
    return f"{share:.1%}" + ("" if accepted == asked else f" ({accepted})")


if __name__ == "__main__":
    main()
