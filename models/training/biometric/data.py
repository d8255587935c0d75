"""The chest radiographs of ``../shared/cxr`` as arrays, with patients, labels and the split.

Reads ``index.csv`` (one row per image) and keeps to its ``suggested_split``: patient-disjoint
70/10/20 (NIH1000's own folders share patients and are not used). Every image is read once,
converted to greyscale and resized to ``size`` x ``size`` (area interpolation; the images are
squashed, as the NIH thumbnails already are), values in [0, 1]. Nothing is written anywhere: the
images stay in the shared folder, and only the path is an argument.

Pairs for verification are drawn within one source (a Hannover ICU series against an NIH
thumbnail would be told apart by the source alone): positives are two images of one patient,
negatives two images of two patients of the same source.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from models.training.biometric.nets import LABELS

SPLITS = ("train", "val", "test")


@dataclass
class CxrSet:
    """Images (N, size, size) float32 in [0, 1], with one entry per image in each list."""

    images: np.ndarray
    patients: list[str]
    sources: list[str]
    labels: np.ndarray  # (N, 14) float32; all zero where the image has no NIH labels
    labelled: np.ndarray  # (N,) bool: the image comes with NIH labels
    files: list[str]

    def __len__(self) -> int:
        return len(self.patients)

    def subset(self, keep: np.ndarray | list[int]) -> CxrSet:
        idx = np.asarray(keep, dtype=int)
        return CxrSet(self.images[idx], [self.patients[i] for i in idx], [self.sources[i] for i in idx],
                      self.labels[idx], self.labelled[idx], [self.files[i] for i in idx])

    def from_source(self, prefix: str) -> CxrSet:
        return self.subset([i for i, s in enumerate(self.sources) if s.startswith(prefix)])


def _read(path: Path, size: int) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise OSError(f"cannot read {path.name}")
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


def _labels(field: str) -> tuple[np.ndarray, bool]:
    names = [name for name in field.split("|") if name]
    vector = np.array([name in names for name in LABELS], dtype=np.float32)
    known = bool(names) and all(name in LABELS or name == "No Finding" for name in names)
    return vector, known


def load_split(root: str | Path, split: str, size: int = 64, frontal_only: bool = True) -> CxrSet:
    """The images of ``split`` ("train", "val" or "test") under ``root`` (``../shared/cxr``)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}")
    root = Path(root)
    rows = [r for r in csv.DictReader((root / "index.csv").open()) if r["suggested_split"] == split]
    if frontal_only:
        rows = [r for r in rows if r.get("frontal", "True") == "True"]
    images, labels, labelled = [], [], []
    for row in rows:
        images.append(_read(root / row["file"], size))
        vector, known = _labels(row["labels"])
        labels.append(vector)
        labelled.append(known and row["source"].startswith("nih"))
    return CxrSet(np.stack(images), [r["patient_id"] for r in rows], [r["source"] for r in rows],
                  np.stack(labels), np.array(labelled), [r["file"] for r in rows])


def positive_pairs(data: CxrSet) -> list[tuple[int, int]]:
    """Every unordered pair of two images of one patient."""
    by_patient: dict[str, list[int]] = {}
    for i, patient in enumerate(data.patients):
        by_patient.setdefault(patient, []).append(i)
    return [(a, b) for idx in by_patient.values() for k, a in enumerate(idx) for b in idx[k + 1:]]


def negative_pair(data: CxrSet, a: int, rng: np.random.Generator) -> int:
    """An image of another patient of the same source as image ``a``."""
    candidates = [i for i, (p, s) in enumerate(zip(data.patients, data.sources, strict=True))
                  if p != data.patients[a] and s == data.sources[a]]
    return int(rng.choice(candidates))


def epoch_pairs(data: CxrSet, rng: np.random.Generator, per_image: int = 1) -> np.ndarray:
    """Balanced pairs for one epoch: for each image with another image of its patient, ``per_image``
    positives and as many negatives. Returns (P, 3): index, index, same patient (0/1)."""
    by_patient: dict[str, list[int]] = {}
    for i, patient in enumerate(data.patients):
        by_patient.setdefault(patient, []).append(i)
    out = []
    for a, patient in enumerate(data.patients):
        others = [i for i in by_patient[patient] if i != a]
        if not others:
            continue
        for _ in range(per_image):
            out.append((a, int(rng.choice(others)), 1))
            out.append((a, negative_pair(data, a, rng), 0))
    return np.array(out, dtype=np.int64)


def evaluation_pairs(data: CxrSet, seed: int = 0, max_positives: int = 5000) -> np.ndarray:
    """A fixed evaluation set: every positive pair (at most ``max_positives``, drawn evenly) and
    as many negatives, each negative sharing its first image with a positive. (P, 3)."""
    rng = np.random.default_rng(seed)
    positives = positive_pairs(data)
    if len(positives) > max_positives:
        positives = [positives[i] for i in sorted(rng.choice(len(positives), max_positives, replace=False))]
    out = [(a, b, 1) for a, b in positives] + [(a, negative_pair(data, a, rng), 0) for a, _ in positives]
    return np.array(out, dtype=np.int64)


def patient_batches(data: CxrSet, rng: np.random.Generator, patients: int = 16, per_patient: int = 2,
                    rounds: int = 2) -> list[np.ndarray]:
    """Batches of ``patients`` patients of one source, ``per_patient`` images each (drawn with
    replacement only when a patient has fewer): every pair inside a batch is a training pair, so one
    forward pass per image serves many pairs. Each patient with two images or more appears
    ``rounds`` times an epoch."""
    by_source: dict[str, dict[str, list[int]]] = {}
    for i, (patient, source) in enumerate(zip(data.patients, data.sources, strict=True)):
        by_source.setdefault(source, {}).setdefault(patient, []).append(i)
    batches = []
    for groups in by_source.values():
        multi = [idx for idx in groups.values() if len(idx) >= 2]
        if len(multi) < 2:
            continue
        for _ in range(rounds):
            order = rng.permutation(len(multi))
            for start in range(0, len(order), patients):
                chosen = [multi[k] for k in order[start:start + patients]]
                if len(chosen) < 2:
                    continue
                batches.append(np.array([i for idx in chosen
                                         for i in rng.choice(idx, per_patient, replace=len(idx) < per_patient)]))
    return [batches[k] for k in rng.permutation(len(batches))]
