"""Box metrics for redaction: coverage of ground-truth boxes by the predicted mask, and precision.

Redaction cares whether each ground-truth text box ends up covered, not whether a predicted box
matches it one-to-one (a detector may return a line where the ground truth has key and value
boxes, or words where it has lines), so matching is by area:
  * a ground-truth box is *found* when the union of predicted boxes covers >= COVER of its area;
  * a predicted box is *correct* when >= HIT of its area lies on ground-truth text, or it contains
    >= half of some ground-truth box.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

COVER = 0.7
HIT = 0.3

Box = tuple[int, int, int, int]


def union_mask(boxes: list[Box], h: int, w: int) -> np.ndarray:
    mask = np.zeros((h, w), bool)
    for x0, y0, x1, y1 in boxes:
        mask[max(0, int(y0)):max(0, int(y1)), max(0, int(x0)):max(0, int(x1))] = True
    return mask


def coverage(box: Box, mask: np.ndarray) -> float:
    x0, y0, x1, y1 = (max(0, int(v)) for v in box)
    size = max(0, x1 - x0) * max(0, y1 - y0)
    return float(mask[y0:y1, x0:x1].sum()) / size if size else 1.0


def area(b: Box) -> int:
    return max(0, b[2] - b[0]) * max(0, b[3] - b[1])


def intersection(a: Box, b: Box) -> int:
    return max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))


@dataclass
class Counts:
    """Micro-averaged counts over images."""

    gt: int = 0
    found: int = 0
    pred: int = 0
    correct: int = 0
    coverages: list[float] = field(default_factory=list)

    def add(self, other: "Counts") -> None:
        self.gt += other.gt
        self.found += other.found
        self.pred += other.pred
        self.correct += other.correct
        self.coverages += other.coverages

    @property
    def recall(self) -> float:
        return self.found / self.gt if self.gt else float("nan")

    @property
    def precision(self) -> float:
        return self.correct / self.pred if self.pred else float("nan")

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r > 0 else float("nan")

    @property
    def mean_coverage(self) -> float:
        return float(np.mean(self.coverages)) if self.coverages else float("nan")

    def row(self) -> dict:
        return {"gt": self.gt, "pred": self.pred, "recall": self.recall, "precision": self.precision, "f1": self.f1,
                "coverage": self.mean_coverage}


def score(gt: list[Box], pred: list[Box], shape: tuple[int, int], text_gt: list[Box] | None = None) -> Counts:
    """Counts for one image. `text_gt` (all text) decides whether a prediction is correct;
    `gt` (e.g. PHI boxes only) decides recall.  Both default to `gt`."""
    h, w = shape
    text_gt = gt if text_gt is None else text_gt
    mask = union_mask(pred, h, w)
    covs = [coverage(b, mask) for b in gt]
    correct = len(pred) - len(false_predictions(pred, text_gt, shape))
    return Counts(gt=len(gt), found=sum(c >= COVER for c in covs), pred=len(pred), correct=correct, coverages=covs)


def false_predictions(pred: list[Box], text_gt: list[Box], shape: tuple[int, int]) -> list[Box]:
    """The predicted boxes that are not *correct* (see the module's docstring)."""
    text_mask = union_mask(text_gt, *shape)
    return [p for p in pred
            if coverage(p, text_mask) < HIT and not any(intersection(p, g) >= 0.5 * max(1, area(g)) for g in text_gt)]
