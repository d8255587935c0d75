"""Detecting several instances ahead, together: the same answers, found once."""

from __future__ import annotations

import copy

from conftest import make_stage
from stub_finder import StubFinder
from synth import encode, make_cine, make_mono

from gateway.pipeline.stage import InstanceContext


class _Batches:
    """Wraps a finder and records how many images each call to it was given."""

    def __init__(self, inner):
        self.inner, self.version, self.sizes = inner, inner.version, []

    def detect(self, image):
        return self.detect_batch([image])[0]

    def detect_batch(self, images):
        self.sizes.append(len(images))
        return self.inner.detect_batch(images)

    def readings(self, image, regions):
        return self.inner.readings(image, regions)


def _instances():
    return [encode(make_mono(text=text, seed=seed), "explicit").ds for seed, text in enumerate((False, True, False))]


def _run_each(stage, datasets):
    """Run like the pipeline: the stage gets the very objects prefetch was given."""
    outs = []
    for ds in datasets:
        ctx = InstanceContext(original=copy.deepcopy(ds))
        outs.append((stage(ds, ctx), ctx.reports[0].details))
    return outs


def test_prefetched_instances_go_through_the_finder_together_and_once():
    finder = _Batches(StubFinder())
    stage = make_stage(finder)
    workings = _instances()
    stage.prefetch(workings)
    assert finder.sizes == [3]
    _run_each(stage, [workings[0], workings[2]])  # the two without text: nothing more to look at
    assert finder.sizes == [3]
    (_, details), = _run_each(stage, [workings[1]])  # with text: only verification looks again
    assert details["regions"] and details["verification"].startswith("passed")
    assert len(finder.sizes) > 1


def test_prefetching_changes_no_result():
    ahead_stage, plain_stage = make_stage(StubFinder()), make_stage(StubFinder())
    ahead = _instances()
    ahead_stage.prefetch(ahead)
    for (a, da), (p, dp) in zip(_run_each(ahead_stage, ahead), _run_each(plain_stage, _instances()), strict=True):
        assert da["regions"] == dp["regions"] and da["verification"] == dp["verification"]
        assert a.PixelData == p.PixelData


def test_a_dataset_not_prefetched_is_detected_as_usual():
    finder = _Batches(StubFinder())
    stage = make_stage(finder)
    stage.prefetch(_instances())
    other = encode(make_mono(text=False, seed=9), "explicit").ds
    _run_each(stage, [other])
    assert finder.sizes[-1] == 1


def test_multi_frame_instances_are_not_fetched_ahead():
    finder = _Batches(StubFinder())
    make_stage(finder).prefetch([encode(make_cine(), "explicit").ds])
    assert finder.sizes == []


def test_with_a_batching_backend_instances_are_restored_together_ahead(tiny_sd2_dir):
    from test_sd2 import _Recording

    finder = StubFinder()
    stage = make_stage(finder, backend="sd2", sd2={"model": str(tiny_sd2_dir), "steps": 1, "crop_size": 64,
                                                   "batch_size": 64})
    stage.backend._pipe = recording = _Recording(stage.backend.pipe)
    workings = [encode(make_mono(text=True, seed=seed), "explicit").ds for seed in range(3)]
    stage.prefetch(workings)
    assert len(recording.batches) == 1 and recording.batches[0] >= 3  # one call for all three

    for _, details in _run_each(stage, workings):
        assert details["backend"] == "sd2" and details["verification"].startswith("passed")
    assert len(recording.batches) == 1  # nothing restored again on each instance's turn
