"""Line recogniser: CRNN (conv features -> BiLSTM) trained with CTC.

Reads one horizontal text line cropped from the display image, resized to HEIGHT px.  The output is
used only to classify a region as PHI or not (the text itself never reaches the audit log).  What
happens around the network (line preparation, batching, decoding) is in `models.reading`, free of
PyTorch, so the gateway can read lines through the ONNX export.
"""

from __future__ import annotations

import torch
from torch import nn

from models.reading import (  # noqa: F401 - re-exported for the trainer and evaluation
    CHARSET,
    HEIGHT,
    MAX_WIDTH,
    TIME_STRIDE,
    batch_lines,
    cer,
    encode,
    greedy_decode,
    normalize_text,
    prepare_line,
)


def block(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class CRNN(nn.Module):
    """Light conv stack (height 32 -> 1, width / 4) and a BiLSTM: ~1/5 the cost of the classic CRNN.
    ``width`` is the first convolution's channels; the later ones are 2, 4, 6 and 8 times it."""

    def __init__(self, hidden: int = 96, n_classes: int = len(CHARSET) + 1, width: int = 16):
        super().__init__()
        c1, c2, c3, c4, c5 = (k * width for k in (1, 2, 4, 6, 8))
        self.features = nn.Sequential(
            block(1, c1), nn.MaxPool2d(2, 2),  # 16 x W/2
            block(c1, c2), nn.MaxPool2d(2, 2),  # 8 x W/4
            block(c2, c3), nn.MaxPool2d((2, 1), (2, 1)),  # 4 x W/4
            block(c3, c4), nn.MaxPool2d((2, 1), (2, 1)),  # 2 x W/4
            nn.Conv2d(c4, c5, (2, 1), bias=False), nn.BatchNorm2d(c5), nn.ReLU(inplace=True),  # 1 x W/4
        )
        self.rnn = nn.LSTM(c5, hidden, num_layers=2, bidirectional=True, batch_first=True, dropout=0.1)
        self.classifier = nn.Linear(2 * hidden, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, 1, HEIGHT, W) in [0, 1] -> log-probs (N, T, classes)."""
        f = self.features(x - 0.5).squeeze(2).transpose(1, 2)
        out, _ = self.rnn(f)
        return self.classifier(out).log_softmax(-1)
