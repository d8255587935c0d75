"""Through the network: text burned into the pixels is gone when the instance reaches the
archive, and an image without text arrives with its pixel data byte for byte."""

from __future__ import annotations

import time
from io import BytesIO

import numpy as np
import pytest
from pydicom import dcmread

from tests.integration.conftest import destination_for
from tests.peers import storescu, wait_for
from tests.pixels.synth import make_color

pytestmark = pytest.mark.filterwarnings("ignore")


def _readable_text(image: np.ndarray) -> str:
    """What the shipped detector and recognizer read anywhere in the image."""
    from models.inference import TextFinder

    finder = TextFinder.load(device="cpu")
    return "".join(finder.read(image, finder.detect(image))).upper().replace(" ", "")


def _text_and_clean(tmp_path, study):
    """An ultrasound image with burned-in text and one without, in the study's files' study."""
    with_text = make_color("RGB", rows=240, cols=320, seed=3)
    without_text = make_color("RGB", rows=240, cols=320, seed=4, text=False)
    files = []
    for name, case in (("text.dcm", with_text), ("clean.dcm", without_text)):
        case.ds.StudyInstanceUID = dcmread(study.files[0]).StudyInstanceUID
        case.ds.save_as(tmp_path / name, enforce_file_format=True)
        files.append(tmp_path / name)
    assert any(t.replace(" ", "").upper()[:5] in _readable_text(with_text.ds.pixel_array) for t in with_text.texts)
    return with_text, without_text, files


def _check_archived(archive, with_text, without_text) -> None:
    archived = {}
    for orthanc_id in archive.instances():
        ds = dcmread(BytesIO(archive.instance_file(orthanc_id)))
        archived["clean" if ds.PixelData == without_text.ds.PixelData else "text"] = ds
    assert set(archived) == {"clean", "text"}

    cleaned = archived["text"]
    read = _readable_text(cleaned.pixel_array)
    for phi in with_text.texts:
        assert phi.replace(" ", "").upper() not in read
    for ds in archived.values():
        codes = [item.CodeValue for item in ds.DeidentificationMethodCodeSequence]
        assert "113101" in codes and ds.BurnedInAnnotation == "NO"


def test_burned_in_phi_is_removed_and_clean_pixels_pass_untouched(archive, gateway_factory, tmp_path, study):
    with_text, without_text, files = _text_and_clean(tmp_path, study)
    gateway = gateway_factory([destination_for(archive)], pixels={"enabled": True}).start()
    storescu(gateway.port, files)
    wait_for(lambda: len(archive.instances()) == 2, 120, what="both instances archived")
    _check_archived(archive, with_text, without_text)
    audit = gateway.cli("audit", "list").stdout
    assert "pixels_detail" in audit and "regions_redacted" in audit


def test_a_pixel_worker_and_a_header_worker_in_processes_of_their_own(archive, gateway_factory, tmp_path, study):
    with_text, without_text, files = _text_and_clean(tmp_path, study)
    gateway = gateway_factory([destination_for(archive)], pixels={"enabled": True}).start("receive")
    gateway.spawn("forward")
    gateway.spawn("work", "--role", "headers")
    storescu(gateway.port, files)
    time.sleep(3)  # quiet for longer than stable_after: the study is queued
    assert archive.instances() == []  # header workers alone never take a job with unseen pixels

    gateway.spawn("work", "--role", "pixels", "--device", "cpu")
    wait_for(lambda: len(archive.instances()) == 2, 120, what="both instances archived")
    _check_archived(archive, with_text, without_text)
    audit = gateway.cli("audit", "list").stdout
    assert "pixels_cleaned" in audit and "pixels_detail" in audit
