"""From image to probability map and back: the detector's geometry, free of PyTorch.

Training (targets) and inference (boxes) must agree on the working scale, the output stride and
the shrink ratio; keeping them here, with numpy and OpenCV only, lets a CPU worker that runs the
network through ONNX Runtime detect text without importing PyTorch at all.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: Each side of a line box is shrunk by this fraction of its short side for the target.
SHRINK = 0.2
#: Extra pixels (at original resolution) added around recovered boxes.
SAFETY_MARGIN = 2
#: Images whose long side is at most this are upsampled x2 before detection.
UPSAMPLE_BELOW = 400
#: Output stride of the probability map.
STRIDE = 2


def working_scale(h: int, w: int) -> float:
    return 2.0 if max(h, w) <= UPSAMPLE_BELOW else 1.0


def shrink_box(box, shrink: float = SHRINK):
    x0, y0, x1, y1 = box
    d = shrink * min(x1 - x0, y1 - y0)
    return x0 + d, y0 + d, x1 - d, y1 - d


def target_mask(boxes, h: int, w: int, stride: int = STRIDE) -> np.ndarray:
    """Shrunk-box mask at the output stride for boxes given at working resolution."""
    mask = np.zeros((h // stride, w // stride), np.float32)
    for box in boxes:
        x0, y0, x1, y1 = (v / stride for v in shrink_box(box))
        xa, ya = int(np.floor(x0 + 0.5)), int(np.floor(y0 + 0.5))
        xb, yb = max(xa + 1, int(np.ceil(x1 - 0.5))), max(ya + 1, int(np.ceil(y1 - 0.5)))
        mask[max(0, ya):max(0, yb), max(0, xa):max(0, xb)] = 1.0
    return mask


@dataclass(frozen=True)
class Postprocess:
    """Chosen on a synthetic validation set (seed 500, training fonts) plus text-free synthetic images;
    ``extend_threshold`` (looks-3) on the same validation set, among 0.1-0.3, all within a box of
    one another and all finding more PHI than no extension."""

    threshold: float = 0.4
    min_score: float = 0.7  # mean probability inside a component
    min_area: int = 2  # in output pixels
    #: A line is lengthened to where the probability along it stays above this (None: never).
    #: The end words of a line can be fainter than its middle (a darker background, a smaller
    #: font); cut at ``threshold`` they stay readable beside the redacted part.
    extend_threshold: float | None = 0.15


def components(binary: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """Count, labels and statistics of the 8-connected components of a uint8 0/1 image.

    BBDT gives the labels OpenCV's default (Spaghetti) gives, a third faster with the statistics
    (OpenCV 5.1, every probability map of 40 validation images); the looks label a dozen maps per
    image."""
    count, labels, stats, _ = cv2.connectedComponentsWithStatsWithAlgorithm(binary, 8, cv2.CV_32S, cv2.CCL_BBDT)
    return count, labels, stats


def boxes_from_prob(prob: np.ndarray, scale: float, params: Postprocess = Postprocess(), stride: int = STRIDE):
    """Connected components of the probability map -> (x0, y0, x1, y1, score) at original resolution."""
    binary = (prob > params.threshold).astype(np.uint8)
    n, labels, stats = components(binary)
    if params.extend_threshold is not None:
        faint = (prob > params.extend_threshold).astype(np.uint8)
        _, faint_labels, faint_stats = components(faint)
    out = []
    for i in range(1, n):
        x, y, bw, bh, area = stats[i]
        if area < params.min_area:
            continue
        score = float(prob[y:y + bh, x:x + bw][labels[y:y + bh, x:x + bw] == i].mean())
        if score < params.min_score:
            continue
        # shrunk box at working resolution -> full box: short side s' = s (1 - 2 SHRINK)
        x0, y0, x1, y1 = x * stride, y * stride, (x + bw) * stride, (y + bh) * stride
        grow = SHRINK * min(x1 - x0, y1 - y0) / (1 - 2 * SHRINK)
        x0, y0, x1, y1 = ((v - grow if k < 2 else v + grow) / scale for k, v in enumerate((x0, y0, x1, y1)))
        if params.extend_threshold is not None:
            # the faint component holding this one (every pixel above threshold is above it too)
            j = faint_labels[y, x:x + bw][labels[y, x:x + bw] == i][0]
            fx, fy, fw, fh, _ = faint_stats[j]
            if x1 - x0 >= y1 - y0:
                x0, x1 = min(x0, fx * stride / scale), max(x1, (fx + fw) * stride / scale)
            else:
                y0, y1 = min(y0, fy * stride / scale), max(y1, (fy + fh) * stride / scale)
        out.append((x0, y0, x1, y1, score))
    return out
