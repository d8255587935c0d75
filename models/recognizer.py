"""Line recogniser: CRNN (conv features -> BiLSTM) trained with CTC.

Reads one horizontal text line cropped from the display image, resized to HEIGHT px.  The output is
used only to classify a region as PHI or not (the text itself never reaches the audit log).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torch import nn

from models.synth.text import UNICODE_EXTRAS

#: Printable ASCII plus symbols seen on scanner overlays.  Index 0 is the CTC blank.
CHARSET = "".join(chr(c) for c in range(32, 127)) + UNICODE_EXTRAS
HEIGHT = 32
MAX_WIDTH = 1024
#: Horizontal down-sampling of the conv stack (one CTC step per this many input pixels).
TIME_STRIDE = 4


def normalize_text(text: str) -> str:
    """Labels and predictions are compared with single spaces and unknown characters dropped."""
    kept = "".join(c for c in text if c in CHARSET)
    return " ".join(kept.split())


def encode(text: str) -> list[int]:
    return [CHARSET.index(c) + 1 for c in normalize_text(text)]


def block(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class CRNN(nn.Module):
    """Light conv stack (height 32 -> 1, width / 4) and a BiLSTM: ~1/5 the cost of the classic CRNN."""

    def __init__(self, hidden: int = 96, n_classes: int = len(CHARSET) + 1):
        super().__init__()
        self.features = nn.Sequential(
            block(1, 16), nn.MaxPool2d(2, 2),  # 16 x W/2
            block(16, 32), nn.MaxPool2d(2, 2),  # 8 x W/4
            block(32, 64), nn.MaxPool2d((2, 1), (2, 1)),  # 4 x W/4
            block(64, 96), nn.MaxPool2d((2, 1), (2, 1)),  # 2 x W/4
            nn.Conv2d(96, 128, (2, 1), bias=False), nn.BatchNorm2d(128), nn.ReLU(inplace=True),  # 1 x W/4
        )
        self.rnn = nn.LSTM(128, hidden, num_layers=2, bidirectional=True, batch_first=True, dropout=0.1)
        self.classifier = nn.Linear(2 * hidden, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, 1, HEIGHT, W) in [0, 1] -> log-probs (N, T, classes)."""
        f = self.features(x - 0.5).squeeze(2).transpose(1, 2)
        out, _ = self.rnn(f)
        return self.classifier(out).log_softmax(-1)


def prepare_line(gray: np.ndarray) -> np.ndarray:
    """Crop (uint8 greyscale) -> float32 HEIGHT x W, contrast-stretched, dark text made light.

    Normalising polarity (text brighter than background) halves what the model must learn.
    """
    h, w = gray.shape[:2]
    width = int(np.clip(round(w * HEIGHT / max(h, 1)), 8, MAX_WIDTH))
    line = cv2.resize(gray, (width, HEIGHT), interpolation=cv2.INTER_AREA if h > HEIGHT else cv2.INTER_LINEAR).astype(np.float32)
    lo, hi = np.percentile(line, (2, 98))
    line = np.clip((line - lo) / max(hi - lo, 1.0), 0, 1)
    border = np.concatenate([line[0], line[-1], line[:, 0], line[:, -1]])
    if np.median(border) > 0.5:
        line = 1.0 - line
    return line


def batch_lines(lines: list[np.ndarray]) -> torch.Tensor:
    width = max(line.shape[1] for line in lines)
    width += (-width) % TIME_STRIDE
    x = np.zeros((len(lines), 1, HEIGHT, width), np.float32)
    for i, line in enumerate(lines):
        x[i, 0, :, : line.shape[1]] = line
    return torch.from_numpy(x)


def greedy_decode(log_probs: torch.Tensor) -> list[tuple[str, float]]:
    """Best path decoding; confidence = mean max-probability over non-blank steps."""
    best = log_probs.detach().max(-1)
    results = []
    for idx, lp in zip(best.indices.numpy(), best.values.numpy()):
        chars, conf, prev = [], [], 0
        for k, p in zip(idx, lp):
            if k != 0 and k != prev:
                chars.append(CHARSET[k - 1])
                conf.append(np.exp(p))
            prev = k
        text = " ".join("".join(chars).split())
        results.append((text, float(np.mean(conf)) if conf else 0.0))
    return results


def cer(pred: str, truth: str) -> tuple[int, int]:
    """(edit distance, reference length) after normalisation."""
    a, b = normalize_text(pred), normalize_text(truth)
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb))
        prev = cur
    return prev[-1], len(b)
