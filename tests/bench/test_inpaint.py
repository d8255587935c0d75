"""bench.inpaint's own figures: the edge-artefact measure and the classifier's macro F1."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from bench.inpaint import edge_artefact, evaluate, mask_window
from bench.modality_classifier import macro_f1
from gateway.pixels.inpaint.base import RestoreContext
from gateway.pixels.inpaint.fill import FillInpainter
from gateway.pixels.inpaint.telea import TeleaInpainter


def smooth_gradient(size: int = 128) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    return np.rint(40 + 0.8 * xx + 0.5 * yy).astype(np.uint8)


def text_over(clean: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """White text burned into ``clean``, and its mask dilated by 3 px as the stage dilates."""
    ink = np.zeros(clean.shape, np.uint8)
    cv2.putText(ink, "DOE^JANE", (14, 70), cv2.FONT_HERSHEY_SIMPLEX, 0.8, 255, 2)
    mask = cv2.dilate(ink, np.ones((7, 7), np.uint8)) > 0
    return np.maximum(clean, ink), mask


def test_an_untouched_image_has_no_edge_artefact():
    clean = smooth_gradient()
    _, mask = text_over(clean)
    assert edge_artefact(clean, clean.copy(), mask) == 0.0


def test_a_solid_fill_leaves_a_larger_seam_than_telea_on_a_smooth_gradient():
    clean = smooth_gradient()
    dirty, mask = text_over(clean)
    ctx = RestoreContext("OT", (0, 255))
    telea = edge_artefact(clean, TeleaInpainter().restore(dirty, mask, ctx), mask)
    fill = edge_artefact(clean, FillInpainter().restore(dirty, mask, ctx), mask)
    assert 0 < telea < fill
    assert fill > 2 * telea


def test_the_local_view_is_the_window_around_the_mask():
    img = np.arange(256 * 256).reshape(256, 256)
    mask = np.zeros((256, 256), bool)
    mask[100:110, 220:256] = True  # bounding box centre (104, 237): the window would cross the right edge
    window = mask_window(img, mask, 64)
    assert window.shape == (64, 64)
    assert window[0, 0] == img[104 - 32, 256 - 64]  # centred in y, shifted back inside in x


def test_macro_f1_is_the_mean_of_the_per_class_f1():
    truth = ["CT", "CT", "MR", "MR", "US"]
    predicted = ["CT", "MR", "MR", "MR", "CT"]
    # CT: TP 1, FP 1, FN 1 -> 2/4; MR: TP 2, FP 1, FN 0 -> 4/5; US: never predicted -> 0
    assert macro_f1(truth, predicted) == pytest.approx((0.5 + 0.8 + 0.0) / 3)
    assert macro_f1(truth, truth) == 1.0


def test_the_bench_table_has_every_figure_for_every_row():
    pytest.importorskip("torch")
    table = evaluate(6, ("telea", "fill"), train_per_class=3)
    assert list(table) == ["original", "(no restoration)", "telea", "fill"]
    assert table["original"]["edge"] == 0.0 and table["original"]["mse_mask"] == 0.0
    for row in table.values():
        for figure in ("f1", "p_true", "f1_local", "p_true_local"):
            assert 0.0 <= row[figure] <= 1.0
    assert table["fill"]["edge"] > table["telea"]["edge"]
