"""Load: concurrent associations, each delivering its own instances of 0.5 MB, through the whole
chain into Orthanc. Prints how many were acknowledged and archived, the C-STOREs the archive
received (one per instance means exactly once), the gateway's peak RSS and the wall time.

    .venv/bin/python -m bench.load --associations 10 --per-association 500

CI runs 4 × 25 (``tests/integration/test_load.py``); this runs the issue's 10 × 500.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from tests.integration.test_load import load
from tests.peers import Gateway, Orthanc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--associations", type=int, default=10)
    parser.add_argument("--per-association", type=int, default=500)
    args = parser.parse_args()
    os.environ["TCP_NODELAY"] = "1"  # dcmtk (storescu, Orthanc) stalls on delayed ACKs without it
    with tempfile.TemporaryDirectory(prefix="load-") as tmp:
        work = Path(tmp)
        archive = Orthanc(work / "archive").start()
        destination = {"name": "archive", "ae_title": archive.aet, "host": "127.0.0.1", "port": archive.dicom_port}
        gateway = Gateway(work / "gateway", destinations=[destination],
                          settings={"queue": {"stable_after": 1}, "logging": {"level": "WARNING"},
                                    # +2: the start-up port check may still hold a slot
                                    "ingest": {"max_associations": args.associations + 2}}).start()
        try:
            result = load(gateway, archive, work, args.associations, args.per_association)
        finally:
            gateway.stop()
            archive.stop()
    print(f"{args.associations} associations x {args.per_association} CT instances of 512x512x16 bit (0.5 MB)")
    for key, value in vars(result).items():
        print(f"  {key:<16} {value if not isinstance(value, float) else round(value, 1)}")
    print(f"  {'instances/s':<16} {result.archived / result.seconds:.1f}")


if __name__ == "__main__":
    main()
