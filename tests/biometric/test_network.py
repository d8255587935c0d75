"""Through the network: a chest DX study sent to the gateway reaches the research archive whose
profile asks for biometric anonymization deformed, deterministically and audited as such, and
reaches another archive, with another profile, in the same run, with its pixels untouched.

Needs dcmtk's storescu and Orthanc (skipped when absent), like tests/integration.
"""

from __future__ import annotations

import copy
from io import BytesIO

import numpy as np
import pytest
from pydicom import dcmread

from gateway.biometric.config import BiometricConfig
from gateway.biometric.stage import BiometricStage
from gateway.pipeline.stage import InstanceContext
from models.biometric.quality import ssim
from tests.biometric.synth import make_chest
from tests.peers import ECHOSCU, ORTHANC, STORESCU, Gateway, Orthanc, storescu, wait_for

pytestmark = [pytest.mark.peers, pytest.mark.filterwarnings("ignore"),
              pytest.mark.skipif(not (ORTHANC and STORESCU and ECHOSCU), reason="needs Orthanc and dcmtk")]


@pytest.fixture
def archives(tmp_path):
    started = [Orthanc(tmp_path / name).start() for name in ("cxr-archive", "plain-archive")]
    yield started
    for orthanc in started:
        orthanc.stop()


def _destination(orthanc: Orthanc, name: str, profile: str) -> dict:
    return {"name": name, "ae_title": orthanc.aet, "host": "127.0.0.1", "port": orthanc.dicom_port,
            "profile": profile}


def _study(folder):
    """A PA chest radiograph and a lateral one of the same study."""
    folder.mkdir()
    frontal, lateral = make_chest(512, 512, seed=11), make_chest(512, 512, seed=12, view="LL")
    lateral.StudyInstanceUID = frontal.StudyInstanceUID
    files = []
    for name, ds in (("pa.dcm", frontal), ("ll.dcm", lateral)):
        ds.save_as(folder / name, enforce_file_format=True)
        files.append(folder / name)
    return frontal, lateral, files


def _archived(orthanc: Orthanc) -> dict[str, object]:
    out = {}
    for orthanc_id in orthanc.instances():
        ds = dcmread(BytesIO(orthanc.instance_file(orthanc_id)))
        out[str(ds.ViewPosition)] = ds
    return out


def test_a_chest_study_is_deformed_for_one_archive_and_untouched_for_the_other(archives, tmp_path,
                                                                                exported_generator):
    cxr_archive, plain_archive = archives
    frontal, lateral, files = _study(tmp_path / "study")
    biometric = {"profiles": ["research-cxr"], "weights_dir": str(exported_generator)}
    gateway = Gateway(tmp_path / "gateway", destinations=[
        _destination(cxr_archive, "cxr-archive", "research-cxr"),  # first: the worker audits the first profile's reports
        _destination(plain_archive, "plain-archive", "basic"),
    ], settings={"pixels": {"enabled": False}, "biometric": biometric,
                 "deid": {"profiles": {"research-cxr": {"options": ["retain_patient_characteristics"]}}}})
    try:
        gateway.start()
        sent = storescu(gateway.port, files)
        assert sent.returncode == 0, sent.stdout + sent.stderr
        for orthanc in archives:
            wait_for(lambda o=orthanc: len(o.instances()) == 2, 120, what="both instances archived")
        deformed, plain = _archived(cxr_archive), _archived(plain_archive)

        # the other profile: both images byte for byte
        assert plain["PA"].PixelData == frontal.PixelData and plain["LL"].PixelData == lateral.PixelData
        # this profile: the frontal chest deformed within the expected band, the lateral one not
        assert deformed["LL"].PixelData == lateral.PixelData
        before, after = frontal.pixel_array / 4095.0, deformed["PA"].pixel_array / 4095.0
        assert deformed["PA"].PixelData != frontal.PixelData
        assert 0.5 < ssim(before, after) < 0.9999
        assert "biometric " in str(deformed["PA"].DeidentificationMethod)  # the method and model version
        assert "biometric" not in str(plain["PA"].DeidentificationMethod)

        # deterministic: the gateway's process made what the stage makes here, byte for byte
        stage = BiometricStage(BiometricConfig(**biometric), b"unused-for-prichexy")
        here = stage(copy.deepcopy(frontal), InstanceContext(original=frontal))
        assert np.array_equal(here.pixel_array, deformed["PA"].pixel_array)

        # the audit says so, in counts and versions
        wait_for(lambda: "biometric_detail" in gateway.cli("audit", "list").stdout, 30, what="the biometric audit")
        audit = gateway.cli("audit", "list").stdout
        assert "test-generator" in audit and "instances_anonymized" in audit
    finally:
        gateway.stop()
