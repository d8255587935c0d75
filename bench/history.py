"""What the queue's periodic queries cost as the gateway's history grows.

The scheduler's tick (``queue.scan_interval``, 1 s by default: expired leases, quiet studies,
the retention pass) and the forwarder's claim (at every ``egress.poll_interval``) each hold the
database's write lock while they look, so whatever they cost, the receiver waits for. This fills
a SQLite database with ``--deliveries`` instances already delivered and purged (a gateway's
history) and 50 still waiting for their retention, then times each query five times.

    .venv/bin/python -m bench.history --deliveries 10000 200000 1000000
    PYTHONPATH=DIR .venv/bin/python -m bench.history ...   # another source tree's gateway
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from gateway.db import Database
from gateway.egress.config import EgressConfig
from gateway.egress.forwarder import Forwarder
from gateway.egress.retention import purge_delivered
from gateway.queue.config import QueueConfig
from gateway.queue.stability import queue_stable_studies, reclaim_expired_leases

WAITING = 50
LONG_AGO = "2026-01-01 00:00:00"


def fill(path: Path, count: int) -> None:
    Database(f"sqlite:///{path}").create_schema()
    con = sqlite3.connect(path)
    con.execute("INSERT INTO studies (id, study_key, state, first_received_at, last_received_at, updated_at) "
                "VALUES (1, 'k', 'done', ?, ?, ?)", (LONG_AGO,) * 3)
    ids = range(1, count + 1)
    con.executemany("INSERT INTO instances (id, study_id, sop_key, sop_class_uid, transfer_syntax_uid, sha256, size, "
                    "state, received_at, prepare_attempts) VALUES (?, 1, ?, 'c', 't', 'x', 1, 'delivered', ?, 0)",
                    ((n, f"k{n}", LONG_AGO) for n in ids))
    con.executemany("INSERT INTO outputs (id, instance_id, profile, path, anon_uid, sop_class_uid, "
                    "transfer_syntax_uid, created_at) VALUES (?, ?, 'default', '/nonexistent', 'u', 'c', 't', ?)",
                    ((n, n, LONG_AGO) for n in ids))
    con.executemany("INSERT INTO deliveries (id, output_id, study_id, destination, state, attempts, next_attempt_at, "
                    "delivered_at) VALUES (?, ?, 1, 'archive', 'sent', 1, ?, ?)", ((n, n, LONG_AGO, LONG_AGO) for n in ids))
    con.execute("UPDATE instances SET state = 'processed' WHERE id > ?", (count - WAITING,))
    con.commit()
    con.close()


def queries(db: Database) -> dict:
    queue = QueueConfig()
    archive = {"name": "archive", "ae_title": "ARCHIVE", "host": "127.0.0.1", "port": 104}
    forwarder = Forwarder(EgressConfig(destinations=[archive]), db, "DEID_GW")
    return {
        "retention pass": lambda: purge_delivered(db, retention_hours=24 * 365 * 10),  # the 50 waiting stay
        "forwarder's claim": forwarder.claim,
        "quiet studies": lambda: queue_stable_studies(db, queue, True),
        "expired leases": lambda: reclaim_expired_leases(db, queue),
    }


def milliseconds(query) -> float:
    """Median of five runs."""
    seconds = []
    for _ in range(5):
        started = time.perf_counter()
        query()
        seconds.append(time.perf_counter() - started)
    return 1000 * statistics.median(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, nargs="+", default=[10_000, 200_000])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for n, count in enumerate(args.deliveries):
            path = Path(tmp) / f"{count}.db"
            fill(path, count)
            db = Database(f"sqlite:///{path}")
            timed = {name: milliseconds(query) for name, query in queries(db).items()}
            db.dispose()
            if n == 0:
                print("| deliveries in the database | " + " | ".join(f"{name}, ms" for name in timed) + " |")
                print("|---" * (len(timed) + 1) + "|")
            print(f"| {count:,} | " + " | ".join(f"{ms:.1f}" for ms in timed.values()) + " |")


if __name__ == "__main__":
    main()
