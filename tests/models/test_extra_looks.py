"""The coarse and second looks find text the working scale alone misses."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from models.inference import DEFAULT_WEIGHTS, TextFinder
from models.metrics import coverage, union_mask
from models.synth import SynthConfig, generate

pytestmark = pytest.mark.skipif(not (Path(DEFAULT_WEIGHTS) / "detector.pt").exists(), reason="no shipped weights")
BOLD = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")


@pytest.fixture(scope="module")
def finder():
    return TextFinder.load()


def _covered(finder, image, boxes) -> list[bool]:
    mask = union_mask([r.box for r in finder.detect(image)], *image.shape[:2])
    return [coverage(b, mask) >= 0.7 for b in boxes]


@pytest.mark.skipif(not BOLD.exists(), reason="fonts-dejavu-core not installed")
def test_large_coloured_words_are_found(finder):
    """56 px words in pure red, green and blue on grey: in greyscale, large and faint."""
    image = Image.new("RGB", (400, 400), (128, 128, 128))
    draw, font = ImageDraw.Draw(image), ImageFont.truetype(str(BOLD), 56)
    boxes = []
    for i, (word, colour) in enumerate([("red", (255, 0, 0)), ("green", (0, 255, 0)), ("blue", (0, 0, 255))]):
        draw.text((30, 40 + 100 * i), word, fill=colour, font=font)
        boxes.append(draw.textbbox((30, 40 + 100 * i), word, font=font))
    assert all(_covered(finder, np.array(image), boxes))


def test_text_a_few_pixels_tall_in_a_large_image_is_found(finder):
    """A synthetic 927x1089 image whose corner blocks are set in 4-5 px text."""
    sample = generate(1000, 38, SynthConfig(font_split="test"))
    tiny = [line.box for line in sample.lines if min(line.box[2] - line.box[0], line.box[3] - line.box[1]) < 6]
    assert len(tiny) >= 10, "the generator no longer draws this image: pick another"
    assert np.mean(_covered(finder, sample.image, tiny)) >= 0.8


def test_single_scale_twin_shares_the_networks(finder):
    twin = finder.single_scale()
    assert twin.detector is finder.detector and not twin.extra_looks and finder.extra_looks
