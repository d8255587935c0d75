"""How long a writer waits for SQLite's write lock when several threads or processes write.

In ``serve``, the receiver's committer and the scheduler are threads of one process writing to
one SQLite file, and the worker, the forwarder and the preparers are processes writing to it
too. Each of ``--writers`` threads in each of ``--processes`` processes here runs write
transactions (an insert, then ``--hold`` ms of work inside the transaction) for ``--seconds``;
the table gives transactions per second and the wait from asking for a transaction to having
written in it: median, 99th percentile and the longest.

    .venv/bin/python -m bench.write_turns
    .venv/bin/python -m bench.write_turns --processes 4 --writers 1
    PYTHONPATH=DIR .venv/bin/python -m bench.write_turns   # another source tree's gateway
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from sqlalchemy import text

from gateway.db import Database


def run(folder: Path, writers: int, processes: int, seconds: float, hold: float) -> tuple[float, list[float]]:
    """Transactions per second and every wait, of ``writers`` threads in each of ``processes``."""
    url = f"sqlite:///{folder / 'turns.db'}"
    db = Database(url)
    with db.session() as session:
        session.execute(text("CREATE TABLE IF NOT EXISTS rows (id INTEGER PRIMARY KEY, value TEXT)"))
    db.dispose()
    if processes == 1:
        waits = write_for(url, writers, seconds, hold)
    else:
        with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn")) as pool:
            shares = pool.map(write_for, *zip(*[(url, writers, seconds, hold)] * processes))
            waits = [wait for share in shares for wait in share]
    return len(waits) / seconds, sorted(waits)


def write_for(url: str, writers: int, seconds: float, hold: float) -> list[float]:
    """The waits of ``writers`` threads of this process writing for ``seconds``."""
    db = Database(url)
    waits: list[float] = []
    lock = threading.Lock()
    until = time.perf_counter() + seconds

    def write() -> None:
        while time.perf_counter() < until:
            asked = time.perf_counter()
            with db.session() as session:
                session.execute(text("INSERT INTO rows (value) VALUES (:value)"), {"value": "x" * 100})
                written = time.perf_counter()
                time.sleep(hold / 1000)
            with lock:
                waits.append(written - asked)

    threads = [threading.Thread(target=write) for _ in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    db.dispose()
    return waits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", type=int, default=4, help="threads per process")
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--hold", type=float, default=2.0, help="ms of work inside each transaction")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"{args.processes} process(es) of {args.writers} writer threads, {args.hold} ms held per transaction, "
          f"{args.rounds} rounds of {args.seconds} s")
    print("| round | transactions/s | wait p50 ms | wait p99 ms | longest wait ms |\n|---|---|---|---|---|")
    for n in range(args.rounds):
        with tempfile.TemporaryDirectory() as tmp:
            rate, waits = run(Path(tmp), args.writers, args.processes, args.seconds, args.hold)
        p99 = waits[int(len(waits) * 0.99)]
        print(f"| {n + 1} | {rate:.0f} | {1000 * statistics.median(waits):.1f} | {1000 * p99:.1f} | "
              f"{1000 * waits[-1]:.0f} |")


if __name__ == "__main__":
    main()
