"""The receiver's memory for one large instance, one oversized instance and one deflate bomb.

Each case starts the receiver alone (``deid-gateway receive``) in its own process, resets its
peak resident set (Linux ``clear_refs``), sends one instance and reads the peak (``VmHWM``):
the difference is what that one transfer cost. dcmtk's storescu sends the uncompressed
instances; pynetdicom sends the bomb, since storescu would inflate it before sending.

    .venv/bin/python -m bench.ingest_memory --megabytes 200

Cases: ``large`` (accepted under the default limits), ``oversized`` (the same instance with
max_instance_bytes = 1 MB: the association is aborted), ``bomb`` (about 1 MB of deflate
that inflates to --bomb-mib MiB; max_inflated_bytes = 64 MiB).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from tests.ingest.memory import peak_rss_mib, reset_peak, rss_mib
from tests.ingest.payloads import deflate_bomb, large_instance
from tests.ingest.senders import send_as_is, storescu_aborted
from tests.peers import Gateway, storescu

MIB = 1024 * 1024


def _storescu_outcome(port: int, path: Path) -> str:
    sent = storescu(port, [path])
    if storescu_aborted(sent):
        return "aborted"
    output = sent.stdout + sent.stderr
    if "Refused: OutOfResources" in output:
        return "refused 0xA700"
    return "accepted" if sent.returncode == 0 else f"storescu exit {sent.returncode}"


def _bomb_outcome(port: int, path: Path) -> str:
    status = send_as_is(port, path)
    return {0x0000: "accepted", 0xA700: "refused 0xA700", 0xC210: "refused 0xC210"}.get(status, hex(status))


def measure(root: Path, name: str, ingest: dict, send, path: Path) -> tuple:
    gateway = Gateway(root / name, settings={"ingest": ingest, "logging": {"level": "WARNING"}})
    gateway.start("receive")
    try:
        pid = gateway.process.pid
        time.sleep(0.5)  # start-up settles
        reset_peak(pid)
        before = rss_mib(pid)
        started = time.perf_counter()
        outcome = send(gateway.port, path)
        seconds = time.perf_counter() - started
        return name, path.stat().st_size / MIB, outcome, before, peak_rss_mib(pid), seconds
    finally:
        gateway.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--megabytes", type=int, default=200, help="size of the large instance (MiB)")
    parser.add_argument("--bomb-mib", type=int, default=1024, help="what the bomb inflates to (MiB)")
    args = parser.parse_args()
    os.environ["TCP_NODELAY"] = "1"  # for every dcmtk process started below

    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        root = Path(tmp)
        large = large_instance(root / "large.dcm", args.megabytes)
        bomb = deflate_bomb(root / "bomb.dcm", args.bomb_mib)
        rows = [
            measure(root, "large", {}, _storescu_outcome, large),
            measure(root, "oversized", {"max_instance_bytes": 1_000_000}, _storescu_outcome, large),
            measure(root, "bomb", {"max_inflated_bytes": 64 * MIB}, _bomb_outcome, bomb),
        ]

    print(f"{'case':<10} {'file MiB':>9} {'outcome':<15} {'RSS before':>11} {'peak':>8} {'growth':>8} "
          f"{'seconds':>8}")
    for name, size, outcome, before, peak, seconds in rows:
        print(f"{name:<10} {size:>9.1f} {outcome:<15} {before:>9.0f} M {peak:>6.0f} M "
              f"{peak - before:>6.0f} M {seconds:>8.2f}")


if __name__ == "__main__":
    main()
