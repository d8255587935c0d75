"""The seed paper's downstream check: does a restored image still look like its modality?

A tiny CNN learns the modality from clean generated images only (the same procedural
backgrounds ``bench.inpaint`` burns text into, drawn from seeds the held-out set never uses).
Its macro F1 on restored images then says whether restoration left the image usable for
research (the paper reports F1 0.999 after diffusion inpainting). A whole image downsampled to
SIDE hardly shows a line of text, so ``bench.inpaint`` also trains one on SIDE×SIDE crops at full
resolution and shows it the window around the mask: the local view, where a seam or a leftover
glyph is as large as the anatomy around it. Everything is pinned (seeds;
``bench.inpaint`` runs torch on one CPU thread) so a run is repeatable and shares the machine politely.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

#: Side of the classifier's input; the generated images are downsampled to it.
SIDE = 64
#: Seeds of the training images start here, far from the held-out set's 0..n.
TRAIN_SEED = 1_000_000


def macro_f1(truth: Sequence[str], predicted: Sequence[str]) -> float:
    """Unweighted mean over the true classes of F1 = 2·TP / (2·TP + FP + FN).

    A class never predicted scores 0; a label predicted but never true counts only as a false
    positive of the others (as sklearn does with ``labels`` = the true classes).
    """
    if len(truth) != len(predicted) or not truth:
        raise ValueError("truth and predicted must be non-empty and of equal length")
    scores = []
    for label in sorted(set(truth)):
        tp = sum(t == label and p == label for t, p in zip(truth, predicted))
        fp = sum(t != label and p == label for t, p in zip(truth, predicted))
        fn = sum(t == label and p != label for t, p in zip(truth, predicted))
        scores.append(2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores))


def features(images: Sequence[np.ndarray]) -> np.ndarray:
    """Grey, SIDE×SIDE, [0, 1]: N×1×SIDE×SIDE float32."""
    out = np.empty((len(images), 1, SIDE, SIDE), np.float32)
    for i, img in enumerate(images):
        grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY) if img.ndim == 3 else img
        out[i, 0] = cv2.resize(grey, (SIDE, SIDE), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    return out


class ModalityClassifier:
    """Three conv layers and a linear head; trained once per run on clean images."""

    def __init__(self, labels: Sequence[str], seed: int = 0):
        import torch
        from torch import nn

        torch.manual_seed(seed)
        self.labels = list(labels)
        self.net = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4),
            nn.Flatten(), nn.Linear(32 * 16, len(self.labels)),
        )
        self.seed = seed
        self.train_accuracy = float("nan")

    def fit(self, images: Sequence[np.ndarray], labels: Sequence[str], epochs: int = 12, batch: int = 32) -> float:
        """Train; returns the accuracy on the training images (a sanity figure, not a result)."""
        import torch

        x = torch.from_numpy(features(images))
        y = torch.tensor([self.labels.index(label) for label in labels])
        optimiser = torch.optim.Adam(self.net.parameters(), lr=3e-3)
        order = torch.Generator().manual_seed(self.seed)
        self.net.train()
        for _ in range(epochs):
            for idx in torch.randperm(len(x), generator=order).split(batch):
                optimiser.zero_grad()
                loss = torch.nn.functional.cross_entropy(self.net(x[idx]), y[idx])
                loss.backward()
                optimiser.step()
        self.train_accuracy = float(np.mean([p == t for p, t in zip(self.predict(images), labels)]))
        return self.train_accuracy

    def probabilities(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """N×len(labels) softmax probabilities."""
        import torch

        self.net.eval()
        with torch.no_grad():
            return torch.softmax(self.net(torch.from_numpy(features(images))), 1).numpy()

    def predict(self, images: Sequence[np.ndarray]) -> list[str]:
        return [self.labels[i] for i in self.probabilities(images).argmax(1)]

    def confidence(self, images: Sequence[np.ndarray], labels: Sequence[str]) -> np.ndarray:
        """The probability each image gets for its true label: finer than F1, which moves only
        when a prediction flips."""
        probs = self.probabilities(images)
        return probs[np.arange(len(labels)), [self.labels.index(label) for label in labels]]


def trained_classifier(kinds: dict[str, str], per_class: int, draw) -> ModalityClassifier:
    """A classifier over ``kinds`` (generator kind -> modality label) trained on the clean images
    ``draw(rng, kind)`` returns (a list: one whole image, or several crops), ``per_class`` draws each."""
    images, labels = [], []
    for i in range(per_class):
        for j, (kind, label) in enumerate(kinds.items()):
            drawn = draw(np.random.default_rng(TRAIN_SEED + i * len(kinds) + j), kind)
            images += drawn
            labels += [label] * len(drawn)
    model = ModalityClassifier(sorted(set(labels)))
    model.fit(images, labels)
    return model
