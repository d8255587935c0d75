"""The sd2 backend end to end with a tiny random pipeline saved to disk and loaded by the same
``from_pretrained`` path a real Stable Diffusion 2 inpainting directory takes."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_stage, run, written
from synth import encode, make_color, make_mono

from gateway.pixels.decode import decode
from gateway.pixels.detect import FrameDetector
from gateway.pixels.inpaint.base import RestoreContext
from gateway.pixels.inpaint.sd2 import Sd2Inpainter, prompt_for
from gateway.pixels.verify import reader

pytest.importorskip("diffusers")


@pytest.mark.parametrize(("make", "prompt"), [
    (lambda: make_mono(16, True, bits_stored=12, modality="CT"), "modality"),
    (lambda: make_color("RGB", modality="US"), "none"),
])
def test_sd2_stage_end_to_end(make, prompt, tiny_sd2_dir, finder):
    case = make()
    received = encode(case, "explicit").ds
    stage = make_stage(finder, backend="sd2",
                       sd2={"model": str(tiny_sd2_dir), "steps": 2, "crop_size": 64, "prompt": prompt})
    out, ctx = run(stage, received)
    details = ctx.reports[0].details
    assert details["backend"] == "sd2"
    assert details["backend_version"].startswith("sd2:")
    assert details["verification"].startswith("passed")
    back = written(out)
    src, dst = decode(received).frames[0], decode(back).frames[0]
    assert dst.dtype == src.dtype
    mask = np.zeros(src.shape[:2], bool)
    for r in details["regions"] + details["fallback_regions"]:
        x0, y0, x1, y1 = r["box"]
        mask[max(0, y0 - 3):y1 + 3, max(0, x0 - 3):x1 + 3] = True
    assert np.array_equal(src[~mask], dst[~mask]), "only masked pixels are pasted back"
    assert not np.array_equal(src[mask], dst[mask])
    # What the detector still finds on the restoration's noise reads as nothing (verification's own test)
    decoded = decode(back)
    found = FrameDetector(finder).detect(decoded, back).boxes
    readable = reader(finder)
    if readable is None:  # a finder that cannot read: the detector alone decides
        assert not found
    else:
        display = FrameDetector(finder).render(decoded, 0, back)
        assert not any(readable(display, found))


def test_sd2_value_mapping_and_large_regions(tiny_sd2_dir):
    inp = Sd2Inpainter(str(tiny_sd2_dir), "cpu", steps=1, crop_size=64)
    frame = np.full((100, 150), 1000, np.uint16)
    frame[:, 75:] = 3000
    mask = np.zeros(frame.shape, bool)
    mask[10:90, 20:130] = True  # larger than one crop: handled in a bigger, resized crop
    out = inp.restore(frame, mask, RestoreContext("CR", (0, 4095)))
    assert out.dtype == np.uint16
    assert np.array_equal(out[~mask], frame[~mask])
    assert out[mask].min() >= 1000 and out[mask].max() <= 3000, "mapped back into the frame's range"


def test_prompts():
    assert prompt_for("US", "modality") == "an ultrasound image"
    assert prompt_for("CR", "modality") == "a chest radiograph"
    assert prompt_for("US", "none") == ""


class _Recording:
    """Wraps a pipeline and records the batch size of every call."""

    def __init__(self, pipe):
        self.pipe, self.batches = pipe, []

    def __call__(self, **kwargs):
        self.batches.append(len(kwargs["prompt"]))
        return self.pipe(**kwargs)


def _frame_with_two_regions(seed: int) -> tuple[np.ndarray, np.ndarray]:
    frame = np.random.default_rng(seed).integers(0, 4000, (96, 160)).astype(np.uint16)
    mask = np.zeros(frame.shape, bool)
    mask[5:15, 5:40] = True
    mask[70:90, 100:150] = True
    return frame, mask


def test_sd2_sends_crops_of_several_frames_through_the_model_together(tiny_sd2_dir):
    inp = Sd2Inpainter(str(tiny_sd2_dir), "cpu", steps=1, crop_size=64, batch_size=3)
    inp._pipe = _Recording(inp.pipe)
    items = [(*_frame_with_two_regions(seed), RestoreContext("CT", (0, 4095))) for seed in (1, 2)]
    together = inp.restore_many(items)
    assert inp._pipe.batches == [3, 1]  # four crops, three to a call

    for (frame, mask, ctx), out in zip(items, together, strict=True):
        alone = inp.restore(frame, mask, ctx)
        assert np.array_equal(out[~mask], frame[~mask])
        # Each crop has its own generator, so batching changes no more than float rounding.
        assert np.abs(out.astype(int) - alone.astype(int)).max() <= 0.01 * 4095
