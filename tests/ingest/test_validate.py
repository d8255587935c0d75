"""Validation of a received file: statuses and fixed reasons, read in constant memory."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.filereader import read_file_meta_info

from gateway.ingest.config import IngestConfig
from gateway.ingest.validate import InvalidInstance, validate_file
from tests.ingest.payloads import declared_huge_rle, deflate_bomb, large_instance

pytestmark = pytest.mark.filterwarnings("ignore")

CANNOT_UNDERSTAND, OUT_OF_RESOURCES, DOES_NOT_MATCH = 0xC210, 0xA700, 0xA900


def _validate(path: Path, ingest: IngestConfig | None = None, **request):
    """As the handler calls it, with the request's UIDs (from the file meta, unless given)."""
    meta = read_file_meta_info(path) if len(request) < 2 else None
    return validate_file(path, request.get("sop_class") or meta.MediaStorageSOPClassUID,
                         request.get("sop_instance") or meta.MediaStorageSOPInstanceUID,
                         ingest or IngestConfig())


def _refusal(path: Path, ingest: IngestConfig | None = None, **request) -> tuple[int, str]:
    with pytest.raises(InvalidInstance) as refused:
        _validate(path, ingest, **request)
    return refused.value.status, refused.value.reason


def test_a_large_instance_is_validated_without_reading_its_pixels(tmp_path):
    path = large_instance(tmp_path / "large.dcm", 48)
    tracemalloc.start()
    try:
        header = _validate(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert header.transfer_syntax_uid == "1.2.840.10008.1.2.1"
    assert peak < 1024 * 1024, f"validation peaked at {peak} bytes"


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small_bigendian.dcm", "emri_small_RLE.dcm",
                                  "JPEG-LL.dcm", "image_dfl.dcm", "rtplan.dcm"])
def test_ordinary_instances_pass(name):
    path = Path(get_testdata_file(name))
    ds = dcmread(path)
    header = _validate(path, sop_class=ds.SOPClassUID, sop_instance=ds.SOPInstanceUID)
    assert header.sop_instance_uid == ds.SOPInstanceUID
    assert header.study_instance_uid == ds.StudyInstanceUID


def test_a_deflate_bomb_is_out_of_resources(tmp_path):
    bomb = deflate_bomb(tmp_path / "bomb.dcm", 256)
    status, reason = _refusal(bomb, IngestConfig(max_inflated_bytes=16 * 1024 * 1024))
    assert status == OUT_OF_RESOURCES
    assert reason == "deflated dataset inflates beyond ingest.max_inflated_bytes"
    # Without max_inflated_bytes, max_instance_bytes is the limit, as if sent uncompressed.
    assert _refusal(bomb, IngestConfig(max_instance_bytes=64 * 1024 * 1024))[0] == OUT_OF_RESOURCES
    assert _validate(bomb).transfer_syntax_uid == "1.2.840.10008.1.2.1.99"  # 256 MiB is allowed


def test_an_image_declared_huge_is_out_of_resources_though_tiny(tmp_path):
    rle = declared_huge_rle(tmp_path / "huge.dcm", 20000, 20000)
    assert rle.stat().st_size < 2000
    assert _refusal(rle) == (OUT_OF_RESOURCES, "declared image larger than ingest.max_pixel_bytes")
    many = declared_huge_rle(tmp_path / "many.dcm", 64, 64, frames=11, samples=1, bits=8)
    assert _refusal(many, IngestConfig(max_frames=10)) == (
        OUT_OF_RESOURCES, "declared frame count above ingest.max_frames")
    assert _validate(many).transfer_syntax_uid == "1.2.840.10008.1.2.5"


def _rewritten(tmp_path: Path, name: str, **changes) -> Path:
    ds = dcmread(get_testdata_file(name))
    for keyword, value in changes.items():
        if value is None:
            delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)
    path = tmp_path / "rewritten.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


def test_native_pixel_data_shorter_than_declared_cannot_be_understood(tmp_path):
    path = _rewritten(tmp_path, "CT_small.dcm", Rows=256)
    assert _refusal(path) == (CANNOT_UNDERSTAND, "pixel data is shorter than the image it describes")
    path = _rewritten(tmp_path, "CT_small.dcm", BitsAllocated=None)
    assert _refusal(path) == (CANNOT_UNDERSTAND, "pixel data without a usable image description")


def test_identity_and_request_mismatches(tmp_path):
    ct = Path(get_testdata_file("CT_small.dcm"))
    assert _refusal(ct, sop_instance="1.2.3")[0] == DOES_NOT_MATCH
    assert _refusal(ct, sop_class="1.2.3")[0] == DOES_NOT_MATCH
    path = _rewritten(tmp_path, "CT_small.dcm", StudyInstanceUID=None)
    assert _refusal(path) == (CANNOT_UNDERSTAND, "missing required attribute(s): StudyInstanceUID")


def test_truncated_and_corrupt_streams_cannot_be_understood(tmp_path):
    data = Path(get_testdata_file("CT_small.dcm")).read_bytes()
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(data[:-5000])
    assert _refusal(cut) == (CANNOT_UNDERSTAND, "dataset is truncated")
    deflated = Path(get_testdata_file("image_dfl.dcm")).read_bytes()
    cut.write_bytes(deflated[:-200])
    assert _refusal(cut, sop_class="1.2.840.10008.5.1.4.1.1.7", sop_instance="1.2") == (
        CANNOT_UNDERSTAND, "deflated dataset does not inflate")
    cut.write_bytes(b"\0" * 100)
    assert _refusal(cut, sop_class="1.2", sop_instance="1.2")[1] == "file meta information is missing"
