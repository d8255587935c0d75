"""Through the network: text burned into the pixels is gone when the instance reaches the
archive, and an image without text arrives with its pixel data byte for byte."""

from __future__ import annotations

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


def test_burned_in_phi_is_removed_and_clean_pixels_pass_untouched(archive, gateway_factory, tmp_path, study):
    with_text = make_color("RGB", rows=240, cols=320, seed=3)
    without_text = make_color("RGB", rows=240, cols=320, seed=4, text=False)
    files = []
    for name, case in (("text.dcm", with_text), ("clean.dcm", without_text)):
        case.ds.StudyInstanceUID = dcmread(study.files[0]).StudyInstanceUID
        case.ds.save_as(tmp_path / name, enforce_file_format=True)
        files.append(tmp_path / name)
    assert any(t.replace(" ", "").upper()[:5] in _readable_text(with_text.ds.pixel_array) for t in with_text.texts)

    gateway = gateway_factory([destination_for(archive)], pixels={"enabled": True}).start()
    storescu(gateway.port, files)
    wait_for(lambda: len(archive.instances()) == 2, 120, what="both instances archived")

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
    audit = gateway.cli("audit", "list").stdout
    assert "pixels_detail" in audit and "regions_redacted" in audit
