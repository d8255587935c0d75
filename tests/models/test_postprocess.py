"""From probability map to line boxes: a line whose end words are faint is still boxed whole."""

import cv2
import numpy as np

from models.postprocess import Postprocess, boxes_from_prob, components

#: A stride-2 map of one line, 6 output pixels tall: a confident middle and faint ends, as the
#: detector gives a line whose last word lies over a darker background.
LINE = (slice(20, 26), slice(10, 90))
MIDDLE = slice(30, 70)


def _line_map(faint: float = 0.25) -> np.ndarray:
    prob = np.zeros((60, 120), np.float32)
    prob[LINE] = faint
    prob[LINE[0], MIDDLE] = 0.95
    return prob


def test_without_extension_only_the_confident_middle_is_boxed():
    (box,) = boxes_from_prob(_line_map(), scale=1.0, params=Postprocess(extend_threshold=None))
    assert box[0] > 2 * 20 and box[2] < 2 * 80


def test_a_line_is_lengthened_over_its_faint_ends():
    (box,) = boxes_from_prob(_line_map(), scale=1.0, params=Postprocess(extend_threshold=0.15))
    x0, _, x1, _, score = box
    assert x0 <= 2 * 10 and x1 >= 2 * 90
    assert score > 0.9  # the score is still the confident part's


def test_a_faint_blob_above_a_line_does_not_make_it_taller():
    prob = _line_map()
    prob[5:20, 40:50] = 0.3  # touching the line from above
    plain = boxes_from_prob(_line_map(), 1.0, Postprocess(extend_threshold=0.15))[0]
    (box,) = boxes_from_prob(prob, 1.0, Postprocess(extend_threshold=0.15))
    assert box[1] == plain[1] and box[3] == plain[3]


def test_response_below_the_extension_threshold_is_not_followed():
    (box,) = boxes_from_prob(_line_map(faint=0.1), scale=1.0, params=Postprocess(extend_threshold=0.15))
    assert box[0] > 2 * 20 and box[2] < 2 * 80


def test_a_vertical_line_is_lengthened_along_its_length():
    (across,) = boxes_from_prob(_line_map(), scale=1.0, params=Postprocess(extend_threshold=0.15))
    (down,) = boxes_from_prob(_line_map().T.copy(), scale=1.0, params=Postprocess(extend_threshold=0.15))
    x0, y0, x1, y1, _ = across
    assert down[:4] == (y0, x0, y1, x1)


def test_boxes_are_in_original_pixels_at_any_working_scale():
    at_one = boxes_from_prob(_line_map(), 1.0, Postprocess(extend_threshold=0.15))[0]
    at_two = boxes_from_prob(_line_map(), 2.0, Postprocess(extend_threshold=0.15))[0]
    assert np.allclose(np.array(at_two[:4]) * 2, at_one[:4])


def test_components_label_as_opencvs_default_does():
    """The looks take components in label order; the faster algorithm must not reorder them."""
    rng = np.random.default_rng(3)
    for _ in range(20):
        prob = cv2.GaussianBlur(rng.random((96, 128)).astype(np.float32), (0, 0), 1.5)
        binary = (prob > 0.5).astype(np.uint8)
        count, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
        ours = components(binary)
        assert ours[0] == count > 2 and np.array_equal(ours[1], labels) and np.array_equal(ours[2], stats)
