"""``deid-gateway deid`` checks each input file as the network path checks a received instance
(gateway.ingest.validate): what C-STORE would refuse, the batch quarantines with the same
reason, instead of de-identifying as much of it as pydicom can read."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file

from gateway.cli import main

CT = Path(get_testdata_file("CT_small.dcm"))


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(f"storage:\n  root: {tmp_path / 'var'}\npixels:\n  enabled: false\n"
                    "ingest:\n  max_pixel_bytes: 1048576\n")
    return path


def deid(tmp_path: Path, config: Path, inputs: dict[str, bytes]) -> tuple[int, list[Path]]:
    folder = tmp_path / "in"
    folder.mkdir()
    for name, data in inputs.items():
        (folder / name).write_bytes(data)
    code = main(["deid", str(folder), str(tmp_path / "out"), "--config", str(config), "--quiet", "--jobs", "1"])
    return code, sorted((tmp_path / "out").rglob("*.dcm"))


def test_a_file_cut_short_is_quarantined_not_written_as_far_as_it_goes(tmp_path, config, capsys):
    data = CT.read_bytes()
    code, written = deid(tmp_path, config, {"cut.dcm": data[:-5000], "whole.dcm": data})
    summary = capsys.readouterr().out
    assert code == 1
    assert "written: 1  not DICOM: 0  quarantined: 1" in summary
    assert "1  dataset is truncated" in summary
    assert len(written) == 1 and len(dcmread(written[0]).PixelData) == len(dcmread(CT).PixelData)


def test_an_image_past_the_ingest_limits_is_quarantined_with_the_network_path_s_reason(tmp_path, config, capsys):
    ds = dcmread(CT)
    ds.NumberOfFrames = 100  # 100 frames of 128x128, 16 bit: 3.3 MB declared, over the 1 MB set above
    big = tmp_path / "big.dcm"
    ds.save_as(big, enforce_file_format=True)
    code, written = deid(tmp_path, config, {"big.dcm": big.read_bytes()})
    summary = capsys.readouterr().out
    assert code == 1 and written == []
    assert "1  declared image larger than ingest.max_pixel_bytes" in summary


def test_a_file_that_is_not_dicom_is_still_counted_as_such(tmp_path, config, capsys):
    code, written = deid(tmp_path, config, {"notes.txt": b"not an image\n" * 20})
    assert code == 0 and written == []
    assert "written: 0  not DICOM: 1  quarantined: 0" in capsys.readouterr().out
