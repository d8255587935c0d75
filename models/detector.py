"""Text-region detector: a small fully-convolutional net predicting a *shrunk* text-line mask.

DBNet-style: the target is each line box shrunk by SHRINK x its short side on every side, so
neighbouring lines stay separate; boxes are recovered from connected components and grown back
by the same ratio (plus a safety margin, because a redaction box must cover every ink pixel).
The network sees a greyscale display image at the working scale (small images are upsampled so
4-6 px text is still a few pixels tall at the output stride of 2).
"""

from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from models.postprocess import (  # noqa: F401 - re-exported: the detector's targets and boxes
    SAFETY_MARGIN,
    SHRINK,
    STRIDE,
    UPSAMPLE_BELOW,
    Postprocess,
    boxes_from_prob,
    shrink_box,
    target_mask,
    working_scale,
)


def conv_bn(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def dw_block(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    """Depthwise-separable conv: most of the receptive field for a fraction of the cost."""
    return nn.Sequential(
        nn.Conv2d(cin, cin, 3, stride, dilation, dilation=dilation, groups=cin, bias=False), nn.BatchNorm2d(cin), nn.ReLU(inplace=True),
        nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class TextDetector(nn.Module):
    """U-Net-lite: strides 2/4/8/16 encoder, additive top-down decoder, logits at stride 2."""

    def __init__(self, width: int = 16):
        super().__init__()
        w = width
        self.stem = nn.Sequential(conv_bn(1, w, 2), dw_block(w, w))  # /2
        self.enc4 = nn.Sequential(dw_block(w, 2 * w, 2), dw_block(2 * w, 2 * w))  # /4
        self.enc8 = nn.Sequential(dw_block(2 * w, 4 * w, 2), dw_block(4 * w, 4 * w), dw_block(4 * w, 4 * w, dilation=2))  # /8
        self.enc16 = nn.Sequential(dw_block(4 * w, 6 * w, 2), dw_block(6 * w, 6 * w, dilation=2), dw_block(6 * w, 6 * w, dilation=4))  # /16
        self.lat8 = nn.Conv2d(6 * w, 4 * w, 1)
        self.lat4 = nn.Conv2d(4 * w, 2 * w, 1)
        self.lat2 = nn.Conv2d(2 * w, w, 1)
        self.dec8 = dw_block(4 * w, 4 * w)
        self.dec4 = dw_block(2 * w, 2 * w)
        self.dec2 = dw_block(w, w)
        self.head = nn.Conv2d(w, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x - 0.5
        s2 = self.stem(x)
        s4 = self.enc4(s2)
        s8 = self.enc8(s4)
        s16 = self.enc16(s8)
        d8 = self.dec8(s8 + F.interpolate(self.lat8(s16), size=s8.shape[-2:], mode="nearest"))
        d4 = self.dec4(s4 + F.interpolate(self.lat4(d8), size=s4.shape[-2:], mode="nearest"))
        d2 = self.dec2(s2 + F.interpolate(self.lat2(d4), size=s2.shape[-2:], mode="nearest"))
        return self.head(d2)
