"""The shipped weights load and find text on a freshly generated image."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from models.inference import DEFAULT_WEIGHTS, TextFinder
from models.regions import TextRegion
from models.metrics import score
from models.training.synth import SynthConfig, generate

pytestmark = pytest.mark.skipif(not (Path(DEFAULT_WEIGHTS) / "detector.pt").exists(), reason="no shipped weights")


@pytest.fixture(scope="module")
def finder():
    import torch

    torch.set_num_threads(1)
    return TextFinder.load()


def test_loads_with_version(finder):
    assert finder.version.startswith("detector-")


def test_finds_text_on_fresh_images(finder):
    config = SynthConfig(font_split="test", real_backgrounds=False)
    found = total = 0
    for i in range(6):
        sample = generate(4242, i, config)
        regions = finder.detect(sample.image)
        assert all(isinstance(r, TextRegion) for r in regions)
        h, w = sample.image.shape[:2]
        counts = score([l.box for l in sample.lines], [r.box for r in regions], (h, w))
        found += counts.found
        total += counts.gt
    assert total > 0 and found / total >= 0.6  # a smoke check; quality is measured by models.training.evaluate


def test_clean_image_and_raw_dtypes(finder):
    flat = np.full((300, 300), 40, np.uint8)
    assert finder.detect(flat) == []
    raw = np.random.default_rng(0).integers(0, 4096, (256, 256)).astype(np.uint16)
    assert isinstance(finder.detect(raw), list)
    rgb = np.zeros((200, 240, 3), np.uint8)
    assert finder.detect_batch([rgb, rgb]) == [[], []]


def test_a_thread_bound_holds_for_opencv_too():
    """The looks around the network run in OpenCV; one thread per worker means one there too."""
    before = cv2.getNumThreads()
    try:
        cv2.setNumThreads(2)
        TextFinder.load(threads=1, verifier=False)
        assert cv2.getNumThreads() == 1
    finally:
        cv2.setNumThreads(before)


def test_read_returns_one_string_per_region(finder):
    sample = generate(4243, 1, SynthConfig(real_backgrounds=False))
    regions = finder.detect(sample.image)
    texts = finder.read(sample.image, regions)
    assert len(texts) == len(regions) and all(isinstance(t, str) for t in texts)


def test_batched_detection_equals_one_at_a_time(finder):
    config = SynthConfig(font_split="test", modality_weights={"ct": 1.0}, real_backgrounds=False)
    images = [generate(7, i, config).image for i in range(3)]
    images = [np.ascontiguousarray(im[:256, :256]) for im in images] + [images[0]]  # mixed sizes
    assert finder.detect_batch(images) == [finder.detect(im) for im in images]
