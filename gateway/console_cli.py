"""The console's actions on the command line: accounts (``users``), and what an operator does
about what went wrong (``release``, ``discard``, ``original``, ``repush``, ``reprocess``,
``signoff``; ``retry`` and ``quarantine`` are in :mod:`gateway.cli`).

Each runs the same function as the web console (:mod:`gateway.queue.retry`) and is audited with
``cli:<account>`` as its actor. Passwords are read from the terminal (or, for scripts, one line
of standard input with ``--password-stdin``), never from the command line.
"""

from __future__ import annotations

import getpass
import sys
from pathlib import Path

from gateway.audit import events as audit
from gateway.files import write_durably

OK, REFUSED = 0, 2


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # noqa: BLE001 - no account name to be had
        return "cli"


def _password(args) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("new password: ")
    if getpass.getpass("again: ") != first:
        raise ValueError("the passwords differ")
    return first


def cmd_users(args, config) -> int:
    from gateway.service import open_runtime
    from gateway.web.auth import USERS_CHANGED
    from gateway.web.users import UserStore

    store = UserStore(config.web.users_path(config.storage.root))
    if args.users_command == "list":
        for user in store.names():
            print(f"{user.name}\t{user.role}")
        return OK
    try:
        if args.users_command == "add":
            store.put(args.name, role=args.role, password=_password(args))
        elif args.users_command == "passwd":
            if store.get(args.name) is None:
                raise ValueError(f"no user {args.name}")
            store.put(args.name, password=_password(args))
        elif args.users_command == "role":
            if store.get(args.name) is None:
                raise ValueError(f"no user {args.name}")
            store.put(args.name, role=args.role)
        elif args.users_command == "remove" and not store.remove(args.name):
            raise ValueError(f"no user {args.name}")
    except ValueError as exc:  # UserError included
        print(f"deid-gateway: {exc}", file=sys.stderr)
        return REFUSED
    with open_runtime(config).db.session() as session:
        audit.record(session, USERS_CHANGED, actor=_actor(), user=args.name, action=args.users_command,
                     role=getattr(args, "role", None))
    print(f"{args.name}: {args.users_command} done ({store.path})")
    return OK


def cmd_action(args, config) -> int:
    """release, discard, original, repush, reprocess, signoff."""
    from gateway.audit.report import find_study
    from gateway.audit.review import sign_off
    from gateway.queue import retry
    from gateway.service import open_runtime

    runtime = open_runtime(config)
    try:
        with runtime.db.session() as session:
            if args.command in ("release", "discard", "original"):
                return _entry_action(args, session, retry)
            study = find_study(session, args.study)
            if study is None:
                print(f"no study {args.study}", file=sys.stderr)
                return REFUSED
            if args.command == "repush":
                profile = config.profile_by_destination().get(args.destination)
                if profile is None:
                    print(f"no destination {args.destination} in egress.destinations", file=sys.stderr)
                    return REFUSED
                queued, missing = retry.repush(session, study, args.destination, profile, _actor())
                print(f"{study.label}: {queued} instances queued for {args.destination}"
                      + (f"; {missing} no longer in the outbox (see 'reprocess')" if missing else ""))
            elif args.command == "reprocess":
                count = retry.reprocess(session, study, _actor())
                print(f"{study.label}: {count} instances queued to be processed again")
            elif args.command == "signoff":
                sign_off(session, study, getpass.getuser(), args.verdict, _actor())
                print(f"{study.label}: signed off as {args.verdict}")
    except retry.ActionRefused as exc:
        print(f"deid-gateway: {exc}", file=sys.stderr)
        return REFUSED
    return OK


def _entry_action(args, session, retry) -> int:
    if args.command == "release":
        study = retry.release(session, args.entry, _actor())
        print(f"entry #{args.entry} released: {study.label} will process it again")
    elif args.command == "discard":
        retry.discard(session, args.entry, _actor())
        print(f"entry #{args.entry} deleted")
    else:
        target = Path(args.file)
        if target.exists():
            print(f"deid-gateway: {target} exists; not overwritten", file=sys.stderr)
            return REFUSED
        source = retry.original_for_review(session, args.entry, _actor())
        with open(source, "rb") as f:
            write_durably(target, f.read())  # 0600: it holds patient data
        print(f"entry #{args.entry}: the original is in {target} (mode 0600; it holds patient data)")
    return OK


def add_parser(sub, common) -> None:
    _add_users(sub, common)
    p = sub.add_parser("release", help="process a quarantined instance again under the current configuration")
    p.add_argument("entry", type=int, help="the quarantine entry's number (deid-gateway quarantine)")
    p.set_defaults(func=cmd_action)
    p = sub.add_parser("discard", help="delete a quarantined file and its entry for good")
    p.add_argument("entry", type=int)
    p.set_defaults(func=cmd_action)
    p = sub.add_parser("original", help="copy a quarantined original to FILE for forensic review (audited)")
    p.add_argument("entry", type=int)
    p.add_argument("file", help="where to write it (mode 0600); it holds patient data")
    p.set_defaults(func=cmd_action)
    p = sub.add_parser("repush", help="send a study's outputs to one destination again (or to a new one)")
    p.add_argument("study", help="de-identified StudyInstanceUID, key:PREFIX or id")
    p.add_argument("destination", help="a name from egress.destinations")
    p.set_defaults(func=cmd_action)
    p = sub.add_parser("reprocess", help="de-identify a study again from the spool, while retention allows")
    p.add_argument("study")
    p.set_defaults(func=cmd_action)
    p = sub.add_parser("signoff", help="record a QA verdict on a study's redactions")
    p.add_argument("study")
    p.add_argument("--verdict", choices=["approved", "needs-changes"], default="approved")
    p.set_defaults(func=cmd_action)


def _add_users(sub, common) -> None:
    from gateway.web.users import ROLES

    p = sub.add_parser("users", help="accounts of the web console (web.users_file)")
    usub = p.add_subparsers(dest="users_command", required=True)
    usub.add_parser("list", help="names and roles", parents=[common])
    for name, text in (("add", "add an account"), ("passwd", "set an account's password"),
                       ("role", "change an account's role"), ("remove", "remove an account")):
        q = usub.add_parser(name, help=text, parents=[common])
        q.add_argument("name")
        if name in ("add", "role"):
            q.add_argument("--role", choices=ROLES, required=True)
        if name in ("add", "passwd"):
            q.add_argument("--password-stdin", action="store_true",
                           help="read the password from one line of standard input")
    p.set_defaults(func=cmd_users)

