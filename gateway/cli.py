"""``deid-gateway``: a thin command line over the library.

Every command takes ``--config`` (default: ``$DEID_GATEWAY_CONFIG``, else ``./config.yaml``
when present, else the embedded defaults).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from gateway.config import ConfigError, GatewayConfig, load_config


def _config(args: argparse.Namespace) -> GatewayConfig:
    path = getattr(args, "config", None) or os.environ.get("DEID_GATEWAY_CONFIG")
    if path is None and Path("config.yaml").exists():
        path = "config.yaml"
    return load_config(path)


def _runtime(config: GatewayConfig):
    from gateway.service import open_runtime

    return open_runtime(config)


# -- running ---------------------------------------------------------------------------------
def cmd_serve(args, config) -> int:
    from gateway.logs import setup_logging
    from gateway.service import PARTS, run

    setup_logging(config.logging)
    parts = {"serve": PARTS + (("web",) if config.web.enabled else ()),
             "receive": ("receive", "schedule"), "work": ("work", "schedule"),
             "forward": ("forward", "schedule"), "web": ("web",)}[args.command]
    run(config, parts, device=getattr(args, "device", "auto"), role=getattr(args, "role", "all"))
    return 0


def cmd_deid(args, config) -> int:
    from gateway.batch import OutputsNotWritten, default_jobs, deidentify_folder
    from gateway.logs import setup_logging

    setup_logging(config.logging)
    jobs = args.jobs if args.jobs is not None else default_jobs(config, args.device)
    try:
        result = deidentify_folder(config, Path(args.in_dir), Path(args.out_dir), profile=args.profile,
                                   jobs=jobs, device=args.device, progress=not args.quiet)
    except OutputsNotWritten as exc:
        print(f"deid-gateway: the outputs could not all be written to disk ({exc}); run again once it is fixed",
              file=sys.stderr)
        return 1
    print(f"written: {result.written}  not DICOM: {result.skipped}  "
          f"quarantined: {sum(result.quarantined.values())}")
    for reason, count in sorted(result.quarantined.items()):
        print(f"  {count:>6}  {reason}")
    if result.renamed:
        print(f"non-conformant UIDs, their files named by hash: {result.renamed}")
    for rule, count in sorted(result.dropped.items()):
        print(f"dropped by rule {rule}: {count}")
    return 1 if result.quarantined else 0


# -- reviewing -------------------------------------------------------------------------------
def cmd_status(args, config) -> int:
    from gateway.audit.report import status_lines

    runtime = _runtime(config)
    with runtime.db.reading() as session:
        print("\n".join(status_lines(session)))
    return 0


def cmd_audit(args, config) -> int:
    from gateway.audit.report import audit_lines, find_study, study_summary

    runtime = _runtime(config)
    if args.audit_command in ("verify", "seal"):
        return _audit_seals(args, runtime)
    with runtime.db.reading() as session:
        if args.audit_command == "show":
            study = find_study(session, args.study)
            if study is None:
                print(f"no study {args.study}", file=sys.stderr)
                return 2
            print("\n".join(study_summary(session, study)))
            print()
            print("\n".join(audit_lines(session, study=study, limit=args.limit)))
        else:
            print("\n".join(audit_lines(session, event=args.event, limit=args.limit)))
    return 0


def _audit_seals(args, runtime) -> int:
    from gateway.audit import seals
    from gateway.keys import read_private

    if args.audit_command == "seal":
        seals.seal(runtime.db, runtime.secret)
    older = tuple(read_private(Path(path), "--old-secret-file") for path in args.old_secret_file or ())
    verdict = seals.verify(runtime.db, runtime.secret, older)
    print("\n".join(seals.verdict_lines(verdict)))
    return 0 if verdict.intact else 1


def cmd_quarantine(args, config) -> int:
    from gateway.audit.report import quarantine_lines

    runtime = _runtime(config)
    with runtime.db.reading() as session:
        print("\n".join(quarantine_lines(session, limit=args.limit)) or "quarantine is empty")
    return 0


def cmd_retry(args, config) -> int:
    from gateway.audit.report import find_study
    from gateway.queue.retry import retry_study

    runtime = _runtime(config)
    with runtime.db.session() as session:
        study = find_study(session, args.study)
        if study is None:
            print(f"no study {args.study}", file=sys.stderr)
            return 2
        deliveries, jobs = retry_study(session, study)
    print(f"{study.label}: {deliveries} deliveries and {jobs} jobs queued again")
    return 0


#: Keys whose values are credentials wherever they appear (``*_env`` and ``*_file`` only name them).
SECRET_KEYS = re.compile(r"(password|passwd|secret|token|api_key|private_key)$", re.IGNORECASE)
MASK = "********"


def masked(value, key: str = ""):
    """``value`` (a dumped configuration) with every password, token and secret replaced,
    including the password inside a URL (``postgresql://user:***@host/db``)."""
    if isinstance(value, dict):
        return {k: masked(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [masked(v, key) for v in value]
    if value is not None and SECRET_KEYS.search(key):
        return MASK
    if isinstance(value, str) and "://" in value:
        parts = urlsplit(value)
        if parts.password is not None:
            netloc = f"{parts.username or ''}:{MASK}@{parts.netloc.rsplit('@', 1)[1]}"
            return urlunsplit(parts._replace(netloc=netloc))
    return value


def private_files(config: GatewayConfig) -> list[tuple[str, Path]]:
    """(setting, path) of every configured file that holds a key or a credential."""
    from gateway.keys import KEY_FILE

    files = [("deid.secret_file", config.deid.secret_file), ("deid.mapping.key_file", config.deid.mapping.key_file)]
    if config.deid.secret is None and config.deid.secret_file is None:
        kept = config.storage.root / KEY_FILE
        files.append(("the kept HMAC secret", kept if kept.exists() else None))
    for destination in config.egress.destinations:
        files += [(f"egress.destinations.{destination.name}.{setting}", path)
                  for setting, path in destination.private_files()]
    return [(setting, path) for setting, path in files if path is not None]


def cmd_check_config(args, config) -> int:
    """Print the configuration with its secrets masked, and refuse key files others can read."""
    from gateway.keys import KeyFileError, check_private

    problems = []
    for setting, path in private_files(config):
        try:
            check_private(path, setting)
        except KeyFileError as exc:
            problems.append(str(exc))
    if not problems:
        print("configuration is valid")
    print(json.dumps(masked(config.model_dump(mode="json")), indent=2))
    if problems:
        print("deid-gateway: " + "\n  ".join(["key files not private:", *problems]), file=sys.stderr)
        return 2
    return 0


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", "-c", default=argparse.SUPPRESS, help="configuration file (YAML)")
    parser = argparse.ArgumentParser(
        prog="deid-gateway", parents=[common],
        description="DICOM de-identification gateway: receive, de-identify, forward, audit.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    _add_parser = sub.add_parser

    def add_parser(name, **kwargs):  # every command also takes --config after its name
        return _add_parser(name, parents=[common], **kwargs)

    sub.add_parser = add_parser
    _add_running(sub)
    _add_batch(sub)
    _add_reviewing(sub, common)

    from gateway import console_cli, mapping_cli, pull_cli, rules_cli

    for module in (mapping_cli, rules_cli, pull_cli, console_cli):
        module.add_parser(sub, common)
    return parser


def _add_running(sub) -> None:
    for name, text in [
        ("serve", "run receiver, scheduler, worker and forwarder in one process"),
        ("receive", "run only the DICOM receiver (and the stability scheduler)"),
        ("work", "run only a de-identification worker"),
        ("forward", "run only the forwarder"),
        ("web", "run only the operator console and STOW-RS ingest (web.host:web.port)"),
    ]:
        p = sub.add_parser(name, help=text)
        if name in ("serve", "work"):
            p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                           help="where the pixel stage runs (auto: a GPU when present)")
        if name == "work":
            p.add_argument("--role", choices=["all", "pixels", "headers"], default="all",
                           help="all: whole jobs; pixels: only the pixel stage, then hand the job on "
                                "(the GPU host); headers: only handed-on jobs, no models loaded")
        p.set_defaults(func=cmd_serve)


def _add_batch(sub) -> None:
    p = sub.add_parser("deid", help="de-identify a folder of files with no network")
    p.add_argument("in_dir")
    p.add_argument("out_dir")
    p.add_argument("--profile", help="profile to apply (default: deid.profile)")
    p.add_argument("--jobs", "-j", type=int, default=None,
                   help="worker processes (default: one per CPU; one when the pixel stage runs on a GPU)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_deid)


def _add_reviewing(sub, common: argparse.ArgumentParser) -> None:
    sub.add_parser("status", help="queue depth, failures and the last deliveries").set_defaults(func=cmd_status)

    p = sub.add_parser("audit", help="review the audit trail")
    asub = p.add_subparsers(dest="audit_command", required=True)
    pl = asub.add_parser("list", help="recent events", parents=[common])
    pl.add_argument("--event", help="only this kind of event")
    pl.add_argument("--limit", type=int, default=50)
    ps = asub.add_parser("show", help="one study: summary and events", parents=[common])
    ps.add_argument("study", help="de-identified StudyInstanceUID, key:PREFIX or id")
    ps.add_argument("--limit", type=int, default=500)
    for name, text in (("verify", "check the audit trail against its seals (exit 1 if a row or seal changed)"),
                       ("seal", "seal the rows written since the last seal (serve does it every minute), then verify")):
        pv = asub.add_parser(name, help=text, parents=[common])
        pv.add_argument("--old-secret-file", action="append", metavar="FILE",
                        help="a secret the gateway used before a rotation, to check the seals made with it")
    p.set_defaults(func=cmd_audit)

    p = sub.add_parser("quarantine", help="list what was refused or kept back")
    p.add_argument("--limit", type=int, default=100)
    p.set_defaults(func=cmd_quarantine)

    p = sub.add_parser("retry", help="send a failed study again")
    p.add_argument("study", help="de-identified StudyInstanceUID, key:PREFIX or id")
    p.set_defaults(func=cmd_retry)

    sub.add_parser("check-config", help="validate the configuration and print it").set_defaults(
        func=cmd_check_config)


#: Everything the gateway writes (database, WAL, logs, spool, outbox, quarantine, exports) is
#: its user's alone, whatever umask it was started with; the modules also ask for 0600/0700.
PRIVATE_UMASK = 0o077


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    previous = os.umask(PRIVATE_UMASK)
    os.umask(previous | PRIVATE_UMASK)
    try:
        return args.func(args, _config(args))
    except ConfigError as exc:  # also a setting a command cannot run with, or a key file others can read
        print(f"deid-gateway: {exc}", file=sys.stderr)
        return 2
    finally:
        os.umask(previous)  # for callers in the same process (tests)
