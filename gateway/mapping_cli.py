"""``deid-gateway mapping ...``: the re-identification tables, for research coordinators.

The patient table (pseudonym -> PatientID, name) and the study links (de-identified Study UID
and pseudonymized accession number -> the originals). Every use is audited (who, what, how many
rows; never an identity). Reading identities needs the mapping key; without it these commands
refuse and the gateway still de-identifies.
"""

from __future__ import annotations

import getpass
import sys
from pathlib import Path

from gateway.audit import events as audit
from gateway.keys import KeyFileError, read_private


def _actor() -> str:
    try:
        return f"operator:{getpass.getuser()}"
    except Exception:
        return "operator"


def _audit(runtime, **detail) -> None:
    with runtime.db.session() as session:
        audit.record(session, audit.MAPPING_ACCESS, actor=_actor(), **detail)


def cmd_mapping(args, config) -> int:
    from gateway.deid import links, mapping
    from gateway.service import open_runtime

    if args.mapping_command == "new-key":
        print(mapping.generate_key())
        return 0
    runtime = open_runtime(config)
    try:
        if args.mapping_command == "import":
            result = links.import_csv(config.deid, runtime.db, Path(args.csv), runtime.secret)
            _audit(runtime, action="import", added=result.added, updated=result.updated,
                   rejected=len(result.rejected))
            print(f"added {result.added}, updated {result.updated}, unchanged {result.unchanged}, "
                  f"rejected {len(result.rejected)}")
            for line, reason in result.rejected:
                print(f"  line {line}: {reason}")
            return 1 if result.rejected else 0
        if args.mapping_command == "lookup":
            record = mapping.lookup_pseudonym(config.deid, runtime.db, args.pseudonym, actor=_actor())
            if record is None:
                print(f"no subject {args.pseudonym}", file=sys.stderr)
                return 1
            print(f"{record.pseudonym}\t{record.patient_id or ''}\t{record.patient_name or ''}\t{record.source}")
            return 0
        if args.mapping_command == "rotate-key":
            new_key = read_private(Path(args.new_key_file), "the new key file").decode("ascii", "replace")
            count = mapping.rotate_key(config.deid, runtime.db, new_key, actor=_actor())
            print(f"re-encrypted {count} identities; now put the new key where deid.mapping names it "
                  f"and start the workers again")
            return 0
        if args.mapping_command == "lookup-study":
            return _lookup_study(args, config, runtime)
        if args.mapping_command == "export" and args.studies:
            count = links.write_studies_csv(links.export_studies(config.deid, runtime.db, actor=_actor()), args.file)
            print(f"exported {count} studies to {args.file} (mode 0600)")
            return 0
        if args.mapping_command == "export":
            records = mapping.export_mapping(config.deid, runtime.db, actor=_actor())
            count = mapping.write_mapping_csv(records, args.file)
            print(f"exported {count} subjects to {args.file} (mode 0600)")
            return 0
    except (mapping.MappingKeyError, KeyFileError) as exc:
        if args.mapping_command == "import":  # the others audit their own refusals
            _audit(runtime, action="import", refused="no valid mapping key")
        print(f"deid-gateway: {exc}", file=sys.stderr)
        return 2
    return 2


def _lookup_study(args, config, runtime) -> int:
    from gateway.deid import links

    records = links.lookup_study(config.deid, runtime.db, args.value, actor=_actor())
    if not records:
        print(f"no study {args.value}", file=sys.stderr)
        return 1
    for r in records:
        print("\t".join([r.subject or "", r.patient_id or "", r.study_uid or "", r.accession_number or "",
                         r.profile]))
    return 0


def add_parser(sub, common) -> None:
    p = sub.add_parser("mapping", help="the encrypted pseudonym -> patient table (needs the mapping key)")
    msub = p.add_subparsers(dest="mapping_command", required=True)
    pi = msub.add_parser("import", parents=[common],
                         help="import a CSV of original PatientID,subject ID; with a header, also "
                              "accession_number,research_accession")
    pi.add_argument("csv")
    pl = msub.add_parser("lookup", help="the patient behind a pseudonym", parents=[common])
    pl.add_argument("pseudonym")
    ps = msub.add_parser("lookup-study", parents=[common],
                         help="the originals behind a de-identified Study UID or pseudonymized accession")
    ps.add_argument("value")
    pe = msub.add_parser("export", help="write the whole table to a CSV file (mode 0600)", parents=[common])
    pe.add_argument("file")
    pe.add_argument("--studies", action="store_true",
                    help="the study links instead: de-identified Study UID and accession -> the originals")
    msub.add_parser("new-key", help="print a new mapping key", parents=[common])
    pr = msub.add_parser("rotate-key", parents=[common],
                         help="re-encrypt the table under the key in NEW_KEY_FILE (mode 0600; workers stopped)")
    pr.add_argument("new_key_file")
    p.set_defaults(func=cmd_mapping)
