"""STOW-RS requests refused for their credentials: how fast the console answers them, and how many
audit rows they leave while it runs.

A sender retrying at once with a stale bearer token, or a flood, posts to ``/dicomweb/studies``
over HTTPS, one request after another on one connection; each is refused (401) before a byte of
its body is read. The console is the real one (``tests.web.stow_peer``: TLS, one token sender);
with ``--baseline-tree DIR`` the same runs from another source tree too, the trees taking turns.

    .venv/bin/python -m bench.stow_refusals [--requests 600] [--rounds 2] [--baseline-tree DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STALE = {"Authorization": "Bearer dgw_stale", "Content-Type": 'multipart/related; type="application/dicom"; boundary=b'}


def one_run(requests: int) -> dict:
    """Refused requests a second, and the audit rows of refusals written while the console runs."""
    import httpx
    from sqlalchemy import func, select

    from gateway.audit.tables import AuditEvent
    from tests.web.stow_peer import StowSite

    with tempfile.TemporaryDirectory(prefix="bench-stow-") as tmp:
        site = StowSite(Path(tmp))
        context = ssl.create_default_context(cafile=str(site.pki.ca))
        with site.serving(), httpx.Client(base_url=site.url, verify=context, timeout=30) as client:
            started = time.perf_counter()
            for _ in range(requests):
                if client.post("/dicomweb/studies", content=b"--b--", headers=STALE).status_code != 401:
                    raise RuntimeError("a request with a stale token was not refused")
            seconds = time.perf_counter() - started
            with site.db.reading() as session:
                rows = session.scalar(select(func.count()).select_from(AuditEvent)
                                      .where(AuditEvent.event == "association_rejected"))
    return {"rate": requests / seconds, "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--baseline-tree", type=Path, help="also run the console of this source tree")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # a run, in a process of its own
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_run(args.requests)))
        return
    trees = [("this tree", ROOT)] + ([("baseline", args.baseline_tree.resolve())] if args.baseline_tree else [])
    results: dict[str, list[dict]] = {name: [] for name, _ in trees}
    for r in range(args.rounds):
        for name, tree in trees[r % len(trees):] + trees[:r % len(trees)]:  # each goes first in turn
            # This script, with the tree's packages (and its console peer) first on the path.
            env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tree), str(ROOT)])}
            done = subprocess.run([sys.executable, __file__, "--one", "--requests", str(args.requests)],
                                  cwd=tree, env=env, check=True, capture_output=True, text=True)
            results[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(f"round {r + 1}, {name}: {results[name][-1]}", flush=True)
    print(f"\n{args.requests} STOW-RS requests with a stale token from one address, medians of {args.rounds} rounds")
    print("| tree | refused requests/s | ratio to this tree | audit rows of refusals |")
    print("|---|---|---|---|")
    medians = {name: (statistics.median(r["rate"] for r in runs), statistics.median(r["rows"] for r in runs))
               for name, runs in results.items()}
    for name, (rate, rows) in medians.items():
        print(f"| {name} | {rate:.0f} | {rate / medians['this tree'][0]:.2f}x | {rows:.0f} |")


if __name__ == "__main__":
    main()
