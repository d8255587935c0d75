"""Every built-in profile, and every option on its own, works through both paths.

A profile that cannot work should fail at start, not quarantine everything it touches: until
this was checked, ``retain_uids`` quarantined every output ("output kept the original SOP
Instance UID"), and ``deid --profile X`` for a profile no destination used was an internal
error. Batch mode runs each profile by ``--profile``; the worker (the network path's processing)
runs them all at once, one destination per profile.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from sqlalchemy import select

from gateway.batch import deidentify_folder
from gateway.config import load_config
from gateway.db import Database
from gateway.deid.config import BUILTIN_PROFILES
from gateway.deid.options import OPTIONS
from gateway.files import hashed_path, sha256_hex, write_durably
from gateway.ingest.validate import InstanceHeader
from gateway.pipeline.build import build_pipeline
from gateway.pipeline.worker import Worker
from gateway.queue.intake import register_instance
from gateway.queue.stability import queue_stable_studies
from gateway.queue.tables import Instance, InstanceState, Output

pytestmark = pytest.mark.filterwarnings("ignore")

SECRET = b"k" * 32
INPUTS = ("CT_small.dcm", "test-SR.dcm", "rtplan.dcm")
#: Each option alone, as a profile of its own, besides the built-in profiles.
PROFILES = {**{name: {} for name in BUILTIN_PROFILES},
            **{f"only-{option}": {"options": [option]} for option in OPTIONS}}


def _config(tmp_path: Path, destinations: list[dict] | None = None):
    return load_config(None, {
        "storage": {"root": str(tmp_path)},
        "database": {"url": f"sqlite:///{tmp_path / 'gateway.db'}"},
        "queue": {"stable_after": 0.01},
        "pixels": {"enabled": False},  # header options only; the pixel stage has its own tests
        "deid": {"profiles": {name: spec for name, spec in PROFILES.items() if spec}},
        "egress": {"destinations": destinations or []},
    })


def _codes(path: Path) -> set[str]:
    return {item.CodeValue for item in dcmread(path).DeidentificationMethodCodeSequence}


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_batch_mode_writes_every_file_under_every_profile(tmp_path, profile):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in INPUTS:
        (inputs / name).write_bytes(Path(get_testdata_file(name)).read_bytes())
    result = deidentify_folder(_config(tmp_path), inputs, tmp_path / "out", profile=profile, progress=False)
    assert (result.written, dict(result.quarantined)) == (len(INPUTS), {})
    options = PROFILES[profile].get("options") or BUILTIN_PROFILES.get(profile).options
    for path in (tmp_path / "out").rglob("*.dcm"):
        assert {OPTIONS[o][0] for o in options} <= _codes(path)


def test_the_worker_makes_every_profile_s_output_for_its_destination(tmp_path):
    destinations = [{"name": f"to-{name}", "ae_title": "ARCHIVE", "host": "127.0.0.1", "port": 104,
                     "profile": name} for name in sorted(PROFILES)]
    config = _config(tmp_path, destinations)
    db = Database(config.database.url)
    db.create_schema()
    for n, name in enumerate(INPUTS, start=1):
        data = Path(get_testdata_file(name)).read_bytes()
        ds = dcmread(get_testdata_file(name))
        path = hashed_path(config.storage.spool, sha256_hex(data))
        write_durably(path, data)
        header = InstanceHeader(str(ds.SOPClassUID), str(ds.SOPInstanceUID), "1.2.3.4", "1.2.3.4.1",
                                str(ds.file_meta.TransferSyntaxUID))
        with db.session() as session:
            register_instance(session, SECRET, header, path, sha256_hex(data), len(data), "SCANNER")
    time.sleep(0.02)
    assert queue_stable_studies(db, config.queue, config.pixels.enabled) == 1
    Worker.from_config(config, db, build_pipeline(config, db, SECRET, device="cpu")).run_once()
    with db.session() as session:
        states = {row.state for row in session.scalars(select(Instance))}
        profiles = {row.profile for row in session.scalars(select(Output))}
    assert states == {InstanceState.PROCESSED}
    assert profiles == set(PROFILES)
