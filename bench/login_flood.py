"""Guessing at the console's login form from many addresses: what it costs the users.

Each attempt comes from the next address of 127.4.0.0/16, as a botnet or a client taking a new
IPv6 address each time would, and posts a wrong password, for a name that is no account
(``--kind unknown``) or for the admin's own name (``--kind targeted``). ``--concurrency``
attempts run at once. Meanwhile the admin, logged in before the flood, loads a page of the
console again and again; after it, she logs in again from her browser (and from a new one).

Printed per tree and kind: attempts a second, how many were checked against a password (401)
and how many refused unchecked (429), the admin's page load during the flood (median and
slowest), whether she can log in afterwards, and the audit rows of failed logins once the console has
stopped (counts held are written as it stops). The console is
the real one over HTTPS (``tests.web.stow_peer``); with ``--baseline-tree DIR`` the same runs
from another source tree too, the trees taking turns.

    .venv/bin/python -m bench.login_flood [--attempts 150] [--concurrency 8] [--rounds 2]
        [--kind unknown targeted] [--baseline-tree DIR]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ADMIN, PASSWORD = "ada", "admin-password-12"  # tests.web.stow_peer.StowSite's account


def _login(client, name: str, password: str) -> int:
    form = client.get("/login").text
    token = re.search(r'name="token" value="([^"]+)"', form).group(1)
    return client.post("/login", data={"username": name, "password": password, "token": token}).status_code


def _attempts(site, context, kind: str, numbers: list[int], statuses: Counter, lock: threading.Lock) -> None:
    import httpx

    for i in numbers:
        address = f"127.4.{i // 250}.{i % 250 + 1}"
        transport = httpx.HTTPTransport(local_address=address, verify=context)
        with httpx.Client(base_url=site.url, transport=transport, timeout=120) as client:
            status = _login(client, f"nobody-{i}" if kind == "unknown" else ADMIN, f"guess-number-{i}")
        with lock:
            statuses[status] += 1


def one_run(kind: str, attempts: int, concurrency: int) -> dict:
    import httpx
    from sqlalchemy import func, select

    from gateway.audit.tables import AuditEvent
    from tests.web.stow_peer import StowSite

    with tempfile.TemporaryDirectory(prefix="bench-login-") as tmp:
        site = StowSite(Path(tmp))
        context = ssl.create_default_context(cafile=str(site.pki.ca))
        with site.serving(graceful=True), httpx.Client(base_url=site.url, verify=context, timeout=120) as browser:
            if _login(browser, ADMIN, PASSWORD) != 303:
                raise RuntimeError("the admin could not log in before the flood")
            statuses, lock = Counter(), threading.Lock()
            flood = [threading.Thread(target=_attempts, args=(site, context, kind, list(range(n, attempts, concurrency)),
                                                              statuses, lock)) for n in range(concurrency)]
            started = time.perf_counter()
            for thread in flood:
                thread.start()
            pages = []
            while any(thread.is_alive() for thread in flood):
                t0 = time.perf_counter()
                if browser.get("/").status_code != 200:
                    raise RuntimeError("the admin's page did not load")
                pages.append(time.perf_counter() - t0)
            seconds = time.perf_counter() - started
            again = _login(browser, ADMIN, PASSWORD)
            with httpx.Client(base_url=site.url, verify=context, timeout=120) as new_browser:
                elsewhere = _login(new_browser, ADMIN, PASSWORD)
        with site.db.reading() as session:  # after the console stopped, as serve stops it
            rows = session.scalar(select(func.count()).select_from(AuditEvent)
                                  .where(AuditEvent.event == "login_failed"))
    return {"rate": attempts / seconds, "checked": statuses[401], "refused": statuses[429],
            "page_median": statistics.median(pages), "page_max": max(pages), "pages": len(pages),
            "again": again, "elsewhere": elsewhere, "rows": rows}


def _median(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def _print_table(results: dict, attempts: int, concurrency: int, rounds: int) -> None:
    print(f"\n{attempts} failed logins from {attempts} addresses, {concurrency} at once; medians of {rounds} rounds")
    print("| tree | kind | attempts/s | checked (401) | refused (429) | admin's page during it, median / slowest ms "
          "| page median, ratio to this tree | admin logs in after it, her browser / a new one "
          "| audit rows of failed logins |")
    print("|---|---|---|---|---|---|---|---|---|")
    answer = {303: "yes", 429: "locked out"}
    for (name, kind), runs in results.items():
        median = functools.partial(_median, runs)
        again = "/".join(sorted({answer.get(r["again"], str(r["again"])) for r in runs}))
        elsewhere = "/".join(sorted({answer.get(r["elsewhere"], str(r["elsewhere"])) for r in runs}))
        ratio = median("page_median") / _median(results["this tree", kind], "page_median")
        print(f"| {name} | {kind} | {median('rate'):.1f} | {median('checked'):.0f} | {median('refused'):.0f} "
              f"| {median('page_median') * 1000:.0f} / {median('page_max') * 1000:.0f} | {ratio:.2f}x "
              f"| {again} / {elsewhere} | {median('rows'):.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--attempts", type=int, default=150)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--kind", nargs="+", choices=["unknown", "targeted"], default=["unknown", "targeted"])
    parser.add_argument("--baseline-tree", type=Path, help="also run the console of this source tree")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # a run, in a process of its own
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_run(args.kind[0], args.attempts, args.concurrency)))
        return
    trees = [("this tree", ROOT)] + ([("baseline", args.baseline_tree.resolve())] if args.baseline_tree else [])
    results: dict[tuple[str, str], list[dict]] = {(name, kind): [] for kind in args.kind for name, _ in trees}
    for r in range(args.rounds):
        for name, tree in trees[r % len(trees):] + trees[:r % len(trees)]:  # each goes first in turn
            for kind in args.kind:
                # This script, with the tree's packages (and its console peer) first on the path.
                env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tree), str(ROOT)])}
                done = subprocess.run([sys.executable, __file__, "--one", "--kind", kind, "--attempts",
                                       str(args.attempts), "--concurrency", str(args.concurrency)],
                                      cwd=tree, env=env, check=True, capture_output=True, text=True)
                results[name, kind].append(json.loads(done.stdout.strip().splitlines()[-1]))
                print(f"round {r + 1}, {name}, {kind}: {results[name, kind][-1]}", flush=True)
    _print_table(results, args.attempts, args.concurrency, args.rounds)


if __name__ == "__main__":
    main()
