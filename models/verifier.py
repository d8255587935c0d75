"""Region verifier: a small CNN that says whether a detected region holds text.

The detector judges a pixel by a receptive field a few characters wide, so a step wedge's edge, a
test card's bars or a photograph's glints can score like a line of text. The verifier sees the
whole region with its surroundings, normalised as the recogniser sees a line
(`models.reading.prepare_region`), and answers one probability per region. What happens around
it (cropping, batching, the gate's thresholds) is in `models.reading` and `models.looks.verdict`, free
of PyTorch.
"""

from __future__ import annotations

import torch
from torch import nn

from models.reading import REGION_WIDTH, prepare_region  # noqa: F401 - re-exported for the trainer


def block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class RegionVerifier(nn.Module):
    """Conv stack (32 x REGION_WIDTH in, stride 8), mean and max pooled, two linear layers: 88k parameters."""

    def __init__(self, width: int = 16):
        super().__init__()
        w = width
        self.features = nn.Sequential(
            block(1, w), nn.MaxPool2d(2),
            block(w, 2 * w), nn.MaxPool2d(2),
            block(2 * w, 3 * w), nn.MaxPool2d(2),
            block(3 * w, 4 * w), block(4 * w, 4 * w),
        )
        self.head = nn.Sequential(nn.Linear(8 * w, 32), nn.ReLU(inplace=True), nn.Linear(32, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, 1, 32, REGION_WIDTH) in [0, 1] -> logits (N, 1)."""
        f = self.features(x)
        return self.head(torch.cat([f.mean((2, 3)), f.amax((2, 3))], 1))
