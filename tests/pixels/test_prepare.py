"""Preparing several instances at once, together: the same answers, found once."""

from __future__ import annotations

import copy

import pytest
from conftest import make_stage
from stub_finder import StubFinder
from synth import encode, make_cine, make_mono

from gateway.pipeline.pipeline import Pipeline
from gateway.pipeline.stage import InstanceContext, Quarantine
from gateway.pixels.ahead import Prepared


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


def _run_each(stage, datasets, prepared=None):
    """Run like the pipeline: each dataset (the very object ``prepare`` was given) with the
    element of ``prepare``'s answer that goes with it, as ``ctx.prepared[stage.name]``."""
    outs = []
    for ds, result in zip(datasets, prepared or [None] * len(datasets), strict=True):
        ctx = InstanceContext(original=copy.deepcopy(ds), prepared={} if result is None else {stage.name: result})
        outs.append((stage(ds, ctx), ctx.reports[0].details))
    return outs


def test_prepared_instances_go_through_the_finder_together_and_once():
    finder = _Batches(StubFinder())
    stage = make_stage(finder)
    workings = _instances()
    prepared = stage.prepare(workings)
    assert finder.sizes == [3]
    assert [p.ds for p in prepared] == workings
    _run_each(stage, [workings[0], workings[2]], [prepared[0], prepared[2]])  # without text: nothing more to look at
    assert finder.sizes == [3]
    (_, details), = _run_each(stage, [workings[1]], [prepared[1]])  # with text: only verification looks again
    assert details["regions"] and details["verification"].startswith("passed")
    assert len(finder.sizes) > 1


def test_preparing_changes_no_result():
    ahead_stage, plain_stage = make_stage(StubFinder()), make_stage(StubFinder())
    ahead = _instances()
    prepared = ahead_stage.prepare(ahead)
    for (a, da), (p, dp) in zip(_run_each(ahead_stage, ahead, prepared), _run_each(plain_stage, _instances()),
                                strict=True):
        assert da["regions"] == dp["regions"] and da["verification"] == dp["verification"]
        assert a.PixelData == p.PixelData


def test_a_dataset_not_prepared_is_detected_as_usual():
    finder = _Batches(StubFinder())
    stage = make_stage(finder)
    stage.prepare(_instances())
    other = encode(make_mono(text=False, seed=9), "explicit").ds
    _run_each(stage, [other])
    assert finder.sizes[-1] == 1


def test_a_result_prepared_for_another_dataset_is_not_used():
    finder = _Batches(StubFinder())
    stage = make_stage(finder)
    with_text, without = encode(make_mono(text=True), "explicit").ds, encode(make_mono(text=False), "explicit").ds
    prepared_without, = stage.prepare([without])
    (_, details), = _run_each(stage, [with_text], [prepared_without])  # the wrong instance's result
    assert details["regions"], "the instance's own text was detected, not the other's absence of it"
    assert finder.sizes[1] == 1


def test_multi_frame_instances_are_not_prepared():
    finder = _Batches(StubFinder())
    assert make_stage(finder).prepare([encode(make_cine(), "explicit").ds]) == [None]
    assert finder.sizes == []


def test_a_bad_instance_is_left_to_its_own_turn():
    stage = make_stage(StubFinder())
    workings = _instances()
    workings[1].PixelData = workings[1].PixelData[:100]
    prepared = stage.prepare(workings)
    assert prepared[1] is None and isinstance(prepared[0], Prepared) and isinstance(prepared[2], Prepared)
    with pytest.raises(Quarantine, match="cannot be decoded"):
        _run_each(stage, [workings[1]], [prepared[1]])


def test_the_pipeline_hands_each_instance_its_own_result():
    finder = _Batches(StubFinder())
    pipeline = Pipeline([make_stage(finder)], {})
    originals = _instances()
    workings = [copy.deepcopy(ds) for ds in originals]
    prepared = pipeline.prepare(workings)
    assert [set(p) for p in prepared] == [{"pixels"}] * 3
    for original, working, mine in zip(originals, workings, prepared, strict=True):
        pipeline.run_instance_stages(original, working, mine)
    assert finder.sizes[0] == 3 and all(size < 3 for size in finder.sizes[1:])


def test_with_a_batching_backend_instances_are_restored_together_ahead(tiny_sd2_dir):
    from test_sd2 import _Recording

    finder = StubFinder()
    stage = make_stage(finder, backend="sd2", sd2={"model": str(tiny_sd2_dir), "steps": 1, "crop_size": 64,
                                                   "batch_size": 64})
    stage.backend._pipe = recording = _Recording(stage.backend.pipe)
    workings = [encode(make_mono(text=True, seed=seed), "explicit").ds for seed in range(3)]
    prepared = stage.prepare(workings)
    assert len(recording.batches) == 1 and recording.batches[0] >= 3  # one call for all three
    assert all(p.restored is not None for p in prepared)

    for _, details in _run_each(stage, workings, prepared):
        assert details["backend"] == "sd2" and details["verification"].startswith("passed")
    assert len(recording.batches) == 1  # nothing restored again on each instance's turn
