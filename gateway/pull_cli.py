"""``deid-gateway pull ...``: bring a coordinator's cohort in from a PACS (query/retrieve).

``pull LIST`` reads a CSV of accession numbers (or ``patient_id,from,to``), ``pull --query
Keyword=value ...`` asks one C-FIND query; each item is queried and its studies retrieved
into the gateway, which de-identifies and forwards them as it does everything it receives.
Running the same command again resumes the pull. ``pull --status`` shows the pulls, by line
and outcome: the list's values never appear in the database, the output or the audit.
"""

from __future__ import annotations

import signal
import sys
import threading

STOPPED = 3  # exit status of a pull stopped before the end: run it again to resume


def _actor() -> str:
    from gateway.mapping_cli import _actor as operator

    return operator()


def cmd_pull(args, config) -> int:
    from gateway.config import ConfigError
    from gateway.logs import quiet_libraries
    from gateway.pull.requests import RequestError, from_query, read_list
    from gateway.pull.runner import Puller
    from gateway.service import open_runtime
    from gateway.stopping import stop_on_signals

    quiet_libraries()
    runtime = open_runtime(config)
    if args.status:
        return _status(runtime, args.run)
    try:
        kind, requests = from_query(args.query) if args.query else read_list(args.list)
        puller = Puller(config, runtime.db, runtime.secret, args.source, args.find_only, actor=_actor())
    except (RequestError, ValueError) as exc:
        raise ConfigError(str(exc)) from None
    if threading.current_thread() is threading.main_thread():
        stop_on_signals(puller.halt, signals=(signal.SIGTERM,))
    summary = puller.run(kind, requests, progress=not args.quiet)
    _report(runtime, summary)
    if summary.stopped:
        return STOPPED
    return 1 if summary.counts.get("failed") else 0


def _report(runtime, summary) -> None:
    from sqlalchemy import select

    from gateway.queue.tables import PullItem, PullItemState

    counts = ", ".join(f"{state.replace('_', ' ')} {summary.counts.get(state, 0)}"
                       for state in (PullItemState.RETRIEVED, PullItemState.FOUND, PullItemState.NOT_FOUND,
                                     PullItemState.FAILED, PullItemState.PENDING))
    resumed = f" (resumed: {summary.done_before} items already done)" if summary.resumed else ""
    print(f"pull run {summary.run_id}{resumed}: {counts}")
    with runtime.db.reading() as session:
        rows = session.execute(select(PullItem.line, PullItem.state, PullItem.reason).where(
            PullItem.run_id == summary.run_id, PullItem.state != PullItemState.RETRIEVED).order_by(PullItem.line)).all()
    for line, state, reason in rows:
        print(f"  line {line}: {state.replace('_', ' ')}" + (f" ({reason})" if reason else ""))
    if summary.stopped:
        print("stopped: run the same command again to resume")


def _status(runtime, run_id: int | None) -> int:
    from gateway.pull.report import item_lines, run_lines

    with runtime.db.reading() as session:
        lines = item_lines(session, run_id) if run_id is not None else run_lines(session)
    print("\n".join(lines) or "no pulls")
    return 0


def add_parser(sub, common) -> None:
    p = sub.add_parser("pull", help="query a PACS for a list (C-FIND) and retrieve it into the gateway (C-MOVE/C-GET)")
    p.add_argument("list", nargs="?", help="CSV of accession numbers, or patient_id,from,to with that header")
    p.add_argument("--query", action="append", metavar="KEYWORD=VALUE",
                   help="one C-FIND query instead of a list (repeat for each key; Modality means ModalitiesInStudy)")
    p.add_argument("--source", help="which of pull.sources (default: the first)")
    p.add_argument("--find-only", action="store_true", help="only query: report found / not found, retrieve nothing")
    p.add_argument("--status", action="store_true", help="list the pulls (with --run N: its items)")
    p.add_argument("--run", type=int, help="with --status: one pull's items by line")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.set_defaults(func=_checked)


def _checked(args, config) -> int:
    if not args.status and bool(args.list) == bool(args.query):
        print("deid-gateway pull: give a LIST file or --query terms (or --status)", file=sys.stderr)
        return 2
    return cmd_pull(args, config)
