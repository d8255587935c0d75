"""``deid-gateway rules ...``: see what the routing rules would do, without sending anything.

``rules test FILE...`` reads each file's header (folders are walked) and prints the rule it
meets and what would happen to it: dropped, or which profile goes to which destinations. The
output names files, rules, profiles and destinations, never a value read from a file.
``rules list`` prints the rules in the order they are checked.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path


def _files(paths: list[str]) -> list[Path]:
    found: list[Path] = []
    for name in paths:
        path = Path(name)
        found += sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return found


def describe(decision) -> str:
    """What a decision does, in words: the rule, then drop or profile -> destinations."""
    who = f"rule {decision.rule}" if decision.rule else "no rule (default)"
    if decision.drop:
        return f"{who}: drop (audited, never forwarded)"
    routes = "; ".join(f"profile {profile} to {', '.join(dests) or 'the outbox only'}"
                       for profile, dests in decision.routes.items())
    return f"{who}: {routes}"


def cmd_rules_test(args, config) -> int:
    from pydicom import dcmread
    from pydicom.errors import InvalidDicomError

    from gateway.logs import quiet_libraries
    from gateway.pipeline.stage import Quarantine
    from gateway.rules.router import Router

    quiet_libraries()
    router = Router.from_config(config)
    tally: Counter = Counter()
    unreadable = 0
    for path in _files(args.files):
        try:
            ds = dcmread(path, defer_size=1024)
            line = describe(router.decide(ds, args.calling_ae, args.address))
            tally[line] += 1
        except (InvalidDicomError, OSError, EOFError):
            line, unreadable = "not DICOM (or unreadable)", unreadable + 1
        except Quarantine as kept:
            line = f"quarantine: {kept.reason}"
            tally[line] += 1
        print(f"{path}: {line}")
    if len(tally) > 1 or sum(tally.values()) > 1:
        print("\nsummary:")
        for line, count in tally.most_common():
            print(f"  {count:>6}  {line}")
    return 1 if unreadable else 0


def cmd_rules_list(args, config) -> int:
    for number, rule in enumerate(config.rules.ordered, start=1):
        if rule.use:
            print(f"{number:>3}. {rule.use} (built-in): drop")
            continue
        action = "drop" if rule.drop else (f"profile {rule.profile or '(each destination its own)'} "
                                           f"to {', '.join(rule.destinations or ['every destination'])}")
        conditions = rule.match.model_dump(exclude_defaults=True, by_alias=True)
        print(f"{number:>3}. {rule.name}: {conditions or 'always'} -> {action}")
    print(f"otherwise: {config.rules.otherwise}")
    return 0


def add_parser(sub, common) -> None:
    p = sub.add_parser("rules", help="the routing and filter rules")
    rsub = p.add_subparsers(dest="rules_command", required=True)
    pt = rsub.add_parser("test", parents=[common],
                         help="which rule each file meets and what would happen (nothing is sent)")
    pt.add_argument("files", nargs="+", help="DICOM files or folders")
    pt.add_argument("--calling-ae", default=None, help="as if sent by this calling AE title")
    pt.add_argument("--address", default=None, help="as if sent from this address")
    pt.set_defaults(func=cmd_rules_test)
    rsub.add_parser("list", parents=[common], help="the rules in the order they are checked").set_defaults(
        func=cmd_rules_list)
