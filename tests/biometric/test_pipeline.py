"""The biometric stage in the assembled pipeline: per profile (so per destination), in batch mode
and in the worker, with another profile of the same run left untouched."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from pydicom import dcmread
from sqlalchemy import select

from gateway.batch import deidentify_folder
from gateway.biometric.stage import BiometricStage
from gateway.config import ConfigError, load_config
from gateway.db import Database
from gateway.deid.stage import HeaderStage
from gateway.files import hashed_path, sha256_hex, write_durably
from gateway.ingest.validate import InstanceHeader
from gateway.pipeline.build import build_pipeline
from gateway.pipeline.worker import Worker
from gateway.queue.intake import register_instance
from gateway.queue.stability import queue_stable_studies
from gateway.queue.tables import Instance, InstanceState, Output
from tests.biometric.synth import make_chest

pytestmark = pytest.mark.filterwarnings("ignore")

SECRET = b"k" * 32


def _config(tmp_path: Path, weights: Path, destinations: list[dict] | None = None, **biometric):
    return load_config(None, {
        "storage": {"root": str(tmp_path)},
        "database": {"url": f"sqlite:///{tmp_path / 'gateway.db'}"},
        "queue": {"stable_after": 0.01},
        "pixels": {"enabled": False},  # the pixel stage has its own tests; this is about the biometric one
        "deid": {"profiles": {"research-cxr": {"options": ["retain_patient_characteristics"]}}},
        "biometric": {"profiles": ["research-cxr"], "weights_dir": str(weights), **biometric},
        "egress": {"destinations": destinations or []},
    })


def _codes(ds) -> set[str]:
    return {item.CodeValue for item in ds.DeidentificationMethodCodeSequence}


def test_only_the_profiles_that_ask_run_the_stage_first(tmp_path, exported_generator):
    pipeline = build_pipeline(_config(tmp_path, exported_generator), None, SECRET, device="cpu",
                              profiles=["research-cxr", "basic"])
    stages = pipeline.profile_stages
    assert [type(s) for s in stages["research-cxr"]] == [BiometricStage, HeaderStage]
    assert [type(s) for s in stages["basic"]] == [HeaderStage]
    assert pipeline.instance_stages == []


def _methods(ds) -> list[str]:
    value = ds.DeidentificationMethod
    return list(value) if ds["DeidentificationMethod"].VM > 1 else [value]


def test_one_run_deforms_for_one_profile_and_not_for_the_other(tmp_path, exported_generator):
    pipeline = build_pipeline(_config(tmp_path, exported_generator), None, SECRET, device="cpu",
                              profiles=["research-cxr", "basic"])
    original = make_chest(256, 256, seed=7)
    results = {r.profile: r for r in pipeline.run(original)}
    assert results["basic"].dataset.PixelData == original.PixelData
    assert not any(v.startswith("biometric") for v in _methods(results["basic"].dataset))
    deformed = results["research-cxr"].dataset
    assert deformed.PixelData != original.PixelData
    assert any(v.startswith("biometric test-generator") for v in _methods(deformed))  # method and version named
    assert "113102" not in _codes(deformed)  # not claimed: see the model card's figures
    assert deformed.PatientName != original.PatientName  # the header stage still ran after it
    assert [r.stage for r in results["research-cxr"].reports] == ["biometric", "header"]


def test_a_profile_not_known_or_a_generator_not_shipped_stops_start_up(tmp_path, exported_generator):
    with pytest.raises(ConfigError, match="biometric.profiles"):
        build_pipeline(_config(tmp_path, exported_generator, profiles=["reserch"]), None, SECRET, device="cpu")
    with pytest.raises(ConfigError, match="biometric.mu"):
        build_pipeline(_config(tmp_path, exported_generator, mu=0.005), None, SECRET, device="cpu")


def test_batch_mode_applies_it_with_the_profile_that_asks(tmp_path, exported_generator):
    inputs = tmp_path / "in"
    inputs.mkdir()
    original = make_chest(256, 256, seed=8)
    original.save_as(inputs / "chest.dcm", enforce_file_format=True)
    config = _config(tmp_path, exported_generator)
    for profile, changed in (("research-cxr", True), ("basic", False)):
        out = tmp_path / profile
        result = deidentify_folder(config, inputs, out, profile=profile, progress=False)
        assert (result.written, dict(result.quarantined)) == (1, {})
        (written,) = out.rglob("*.dcm")
        assert (dcmread(written).PixelData != original.PixelData) is changed


def test_the_worker_sends_each_destination_its_profile_s_pixels(tmp_path, exported_generator):
    destinations = [{"name": name, "ae_title": "ARCHIVE", "host": "127.0.0.1", "port": 104, "profile": profile}
                    for name, profile in (("cxr-research", "research-cxr"), ("plain", "basic"))]
    config = _config(tmp_path, exported_generator, destinations)
    db = Database(config.database.url)
    db.create_schema()
    original = make_chest(256, 256, seed=9)
    path = tmp_path / "chest.dcm"
    original.save_as(path, enforce_file_format=True)
    data = path.read_bytes()
    spooled = hashed_path(config.storage.spool, sha256_hex(data))
    write_durably(spooled, data)
    header = InstanceHeader(str(original.SOPClassUID), str(original.SOPInstanceUID), str(original.StudyInstanceUID),
                            str(original.SeriesInstanceUID), str(original.file_meta.TransferSyntaxUID))
    with db.session() as session:
        register_instance(session, SECRET, header, spooled, sha256_hex(data), len(data), "SCANNER")
    time.sleep(0.02)
    assert queue_stable_studies(db, config.queue, config.pixels.enabled) == 1
    Worker.from_config(config, db, build_pipeline(config, db, SECRET, device="cpu")).run_once()
    with db.session() as session:
        assert {row.state for row in session.scalars(select(Instance))} == {InstanceState.PROCESSED}
        outputs = {row.profile: Path(row.path) for row in session.scalars(select(Output))}
    assert set(outputs) == {"research-cxr", "basic"}
    assert dcmread(outputs["basic"]).PixelData == original.PixelData
    assert dcmread(outputs["research-cxr"]).PixelData != original.PixelData
