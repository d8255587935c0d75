"""What sealing and verifying the audit trail cost (gateway.audit.seals).

Writes ``--rows`` audit rows shaped like the worker's (a ``processed`` event with a study, an
actor and a few details) into a fresh SQLite database, then seals them in seals of
``--per-seal`` rows (a minute's worth at a given rate) and verifies the whole trail. Prints the
medians over ``--rounds`` of microseconds per row for each. Both read the rows a chunk at a
time (``seals.CHUNK``), so their memory does not grow with the trail.

    .venv/bin/python -m bench.audit_seals [--rows 100000] [--per-seal 20000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

SECRET = b"bench-seal-secret"


def _write(db, rows: int) -> None:
    from gateway.audit import events as audit

    batch = [audit.columns(audit.PROCESSED, actor="worker@host:1234", instances=1, outputs=1, profile="basic",
                           seconds=0.0123) for _ in range(min(rows, 5000))]
    done = 0
    while done < rows:
        with db.session() as session:
            audit.record_all(session, batch[:rows - done])
        done += len(batch[:rows - done])


def one_round(rows: int, per_seal: int) -> dict:
    import logging

    from gateway.audit import seals
    from gateway.db import Database

    logging.getLogger("gateway.audit").setLevel(logging.WARNING)  # the writing logs every row
    with tempfile.TemporaryDirectory(prefix="bench-seals-") as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'g.db'}")
        db.create_schema()
        sealing = 0.0
        for _ in range(0, rows, per_seal):
            _write(db, per_seal)
            started = time.perf_counter()
            seals.seal(db, SECRET, settle=timedelta(0))
            sealing += time.perf_counter() - started
        started = time.perf_counter()
        verdict = seals.verify(db, SECRET)
        verifying = time.perf_counter() - started
        db.dispose()
    if not verdict.intact or verdict.rows_sealed != rows:
        raise RuntimeError("the trail did not verify")
    return {"seal_us": sealing / rows * 1e6, "verify_us": verifying / rows * 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--per-seal", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    runs = []
    for r in range(args.rounds):
        runs.append(one_round(args.rows, args.per_seal))
        print(f"round {r + 1}: {runs[-1]}", flush=True)
    print(f"\n{args.rows} audit rows, seals of {args.per_seal}; medians of {args.rounds} rounds")
    print("| sealing, µs per row | verifying, µs per row |")
    print("|---|---|")
    print(f"| {statistics.median(r['seal_us'] for r in runs):.1f} | {statistics.median(r['verify_us'] for r in runs):.1f} |")


if __name__ == "__main__":
    main()
