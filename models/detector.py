"""Text-region detector: a small fully-convolutional net predicting a *shrunk* text-line mask.

DBNet-style: the target is each line box shrunk by SHRINK x its short side on every side, so
neighbouring lines stay separate; boxes are recovered from connected components and grown back
by the same ratio (plus a safety margin, because a redaction box must cover every ink pixel).
The network sees a greyscale display image at the working scale (small images are upsampled so
4-6 px text is still a few pixels tall at the output stride of 2).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

#: Each side of a line box is shrunk by this fraction of its short side for the target.
SHRINK = 0.2
#: Extra pixels (at original resolution) added around recovered boxes.
SAFETY_MARGIN = 2
#: Images whose long side is at most this are upsampled x2 before detection.
UPSAMPLE_BELOW = 400
#: Output stride of the probability map.
STRIDE = 2


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
    """Chosen on a synthetic validation set (seed 500, training fonts) plus text-free synthetic images."""

    threshold: float = 0.4
    min_score: float = 0.7  # mean probability inside a component
    min_area: int = 2  # in output pixels


def boxes_from_prob(prob: np.ndarray, scale: float, params: Postprocess = Postprocess(), stride: int = STRIDE):
    """Connected components of the probability map -> (x0, y0, x1, y1, score) at original resolution."""
    binary = (prob > params.threshold).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
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
        out.append((x0, y0, x1, y1, score))
    return out
