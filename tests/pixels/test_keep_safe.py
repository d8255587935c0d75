"""The keep_safe policy with the shipped models: it keeps scanner text, and never a PHI line."""

from __future__ import annotations

import pytest

from gateway.pixels.config import PixelsConfig
from gateway.pixels.policy import judge, keeps

synth = pytest.importorskip("models.training.synth")
phi = pytest.importorskip("models.phi")
metrics = pytest.importorskip("models.metrics")


def kept_by_default_keep_safe(finder, image, regions) -> list[bool]:
    """Whether each region stays under keep_safe with the configuration's defaults."""
    cfg = PixelsConfig()
    return [keeps(judge(r, phi.classify, region), cfg.keep_classes, cfg.keep_min_confidence, cfg.keep_min_region_px)
            for r, region in zip(finder.readings(image, regions), regions, strict=True)]


def test_keep_safe_keeps_no_phi_on_fresh_generated_images(finder, using_real_finder):
    if not using_real_finder:
        pytest.skip("needs the shipped recogniser")
    config = synth.SynthConfig(font_split="test", real_backgrounds=False)
    phi_exposed, safe_kept, safe_total = [], 0, 0
    for i in range(40):
        sample = synth.generate(4321, i, config)
        h, w = sample.image.shape[:2]
        regions = finder.detect(sample.image)
        stays = kept_by_default_keep_safe(finder, sample.image, regions)
        found = metrics.union_mask([r.box for r in regions], h, w)
        redacted = metrics.union_mask([r.box for r, s in zip(regions, stays, strict=True) if not s], h, w)
        for line in sample.lines:
            detected = metrics.coverage(line.box, found) >= 0.7
            if line.phi and detected and metrics.coverage(line.box, redacted) < 0.7:
                phi_exposed.append((i, line.category))  # never the text itself
            if not line.phi and detected:
                safe_total += 1
                safe_kept += metrics.coverage(line.box, redacted) < 0.7
    assert not phi_exposed, phi_exposed
    assert safe_kept >= safe_total / 3, (safe_kept, safe_total)


def test_keep_safe_redacts_a_sex_marker_misread_as_a_position_letter(finder, using_real_finder):
    """Image 38 of the synthetic test set: a 5 px "[M]" that recognizer-1.4 reads as "P" at a
    confidence of 0.72, and 1.5 at 0.82, which the keep-safe rules would call a position marker."""
    if not using_real_finder:
        pytest.skip("needs the shipped recogniser")
    sample = synth.generate(1000, 38, synth.SynthConfig(font_split="test"))
    h, w = sample.image.shape[:2]
    regions = finder.detect(sample.image)
    stays = kept_by_default_keep_safe(finder, sample.image, regions)
    redacted = metrics.union_mask([r.box for r, s in zip(regions, stays, strict=True) if not s], h, w)
    markers = [line for line in sample.lines if line.phi and line.text == "[M]"]
    assert markers, "the generator no longer draws this image: pick another"
    assert all(metrics.coverage(line.box, redacted) >= 0.7 for line in markers)


def test_the_gateway_defaults_are_the_policy_the_evaluation_measures():
    """models.training.evaluate scores keep_safe as models.phi.KEEP_SAFE_POLICY; its figures hold for the
    gateway only while the configuration's defaults are that policy."""
    cfg = PixelsConfig()
    assert set(cfg.keep_classes) == phi.KEEP_SAFE_POLICY.keep
    assert cfg.keep_min_confidence == phi.KEEP_SAFE_POLICY.min_confidence
    assert cfg.keep_min_region_px == phi.KEEP_SAFE_POLICY.min_region_px
