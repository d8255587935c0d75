"""The networks of PriCheXy-Net and of its Privacy-Net baseline, in PyTorch.

Packhäuser et al., "Deep Learning-based Anonymization of Chest Radiographs: A Utility-preserving
Measure for Patient Privacy" (MICCAI 2023, arXiv 2209.11531), section 2 and its published code:

- the flow-field generator G is a U-Net (Ronneberger et al.; the variant of Buda et al.) with one
  input channel, two output channels, 32 feature maps in its first block (doubling at each of four
  poolings), batch normalisation, and a tanh on its output, so that every component of the flow
  lies in [-1, 1];
- the flow is smoothed with a Gaussian kernel (size 9, sigma 2) and the sampling grid is
  ``identity - mu * flow`` in the normalised coordinates of ``grid_sample`` (align_corners=True,
  border padding, bilinear): the deformed image is x'(p) = x(p - mu * (K_sigma * G(x))(p)),
  with mu = 0.001, 0.005 or 0.01 in the paper.

The published code smooths the composed grid (identity included) with zero padding; a Gaussian
leaves the linear identity unchanged away from the border, so that equals smoothing the flow alone
there, and smoothing the flow alone (done here) avoids the zero padding pulling the outermost four
pixels of the identity inwards. The runtime (``models.biometric.deform``) repeats the same
sampling in NumPy/OpenCV at any resolution; this module is for training and for the ONNX export.

Privacy-Net (Kim et al., 2019), as PriCheXy-Net's comparison adapted it to 2-D: a three-level
U-Net "encryptor" (16 filters, LeakyReLU 0.2, sigmoid output) whose output *is* the image.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

KERNEL_SIZE = 9
SIGMA = 2.0
MUS = (0.001, 0.005, 0.01)


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    """PriCheXy-Net's flow-field generator: ``UNet(1, 2, 32)``, tanh output in [-1, 1]."""

    def __init__(self, in_channels: int = 1, out_channels: int = 2, features: int = 32):
        super().__init__()
        f = features
        widths = [f, 2 * f, 4 * f, 8 * f]
        self.encoders = nn.ModuleList()
        cin = in_channels
        for w in widths:
            self.encoders.append(_block(cin, w))
            cin = w
        self.bottleneck = _block(8 * f, 16 * f)
        self.upconvs = nn.ModuleList()
        self.decoders = nn.ModuleList()
        cin = 16 * f
        for w in reversed(widths):
            self.upconvs.append(nn.ConvTranspose2d(cin, w, kernel_size=2, stride=2))
            self.decoders.append(_block(2 * w, w))
            cin = w
        self.head = nn.Conv2d(f, out_channels, kernel_size=1)
        self.features = features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for encoder in self.encoders:
            x = encoder(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.bottleneck(x)
        for upconv, decoder, skip in zip(self.upconvs, self.decoders, reversed(skips), strict=True):
            x = decoder(torch.cat((upconv(x), skip), dim=1))
        return torch.tanh(self.head(x))


def gaussian_kernel(size: int = KERNEL_SIZE, sigma: float = SIGMA) -> torch.Tensor:
    """The normalised 2-D Gaussian, ``size`` x ``size``."""
    d = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-(d ** 2) / (2 * sigma ** 2)) / (sigma * math.sqrt(2 * math.pi))
    k = g[:, None] * g[None, :]
    return k / k.sum()


class GaussianSmoothing(nn.Module):
    """Depthwise convolution of each flow channel with the Gaussian, zero padding, same size."""

    def __init__(self, channels: int = 2, size: int = KERNEL_SIZE, sigma: float = SIGMA):
        super().__init__()
        self.register_buffer("weight", gaussian_kernel(size, sigma).expand(channels, 1, size, size).clone())
        self.channels, self.pad = channels, (size - 1) // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight, padding=self.pad, groups=self.channels)


class FlowGenerator(nn.Module):
    """G followed by the smoothing: image in [0, 1] (N, 1, H, W) -> smoothed flow (N, 2, H, W).

    Channel 0 moves along x (columns), channel 1 along y (rows), as in ``grid_sample``'s grid.
    This is what the ONNX export holds; mu and the sampling are applied outside it.
    """

    def __init__(self, features: int = 32):
        super().__init__()
        self.unet = UNet(1, 2, features)
        self.smooth = GaussianSmoothing(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.smooth(self.unet(x))


def identity_grid(h: int, w: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """The (1, 2, H, W) grid that ``grid_sample`` (align_corners=True) maps to the image itself."""
    ys = torch.linspace(-1, 1, h, device=device)
    xs = torch.linspace(-1, 1, w, device=device)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack((gx, gy), 0)[None]


def deform(images: torch.Tensor, flow: torch.Tensor, mu: float) -> torch.Tensor:
    """x'(p) = x(p - mu * flow(p)): bilinear, border padding, align_corners=True (the paper's
    ``grid_sample`` call). ``flow`` is already smoothed."""
    grid = identity_grid(images.shape[-2], images.shape[-1], images.device) - mu * flow
    return F.grid_sample(images, grid.permute(0, 2, 3, 1), mode="bilinear", padding_mode="border",
                         align_corners=True)


class PriCheXyNet(nn.Module):
    """The anonymiser: image (N, 1, H, W) in [0, 1] -> deformed image, for a fixed mu."""

    def __init__(self, mu: float, features: int = 32):
        super().__init__()
        self.mu = mu
        self.generator = FlowGenerator(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return deform(x, self.generator(x), self.mu)


def _conv_bn(cin: int, cout: int, act: nn.Module | None) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout)]
    if act is not None:
        layers.append(act)
    return nn.Sequential(*layers)


def _double(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(_conv_bn(cin, cout, nn.LeakyReLU(0.2, inplace=True)), _conv_bn(cout, cout, None))


class PrivacyNet(nn.Module):
    """Privacy-Net's encryptor in 2-D (three poolings, ``num_filter`` 16, sigmoid image out)."""

    def __init__(self, features: int = 16):
        super().__init__()
        f = features
        self.down = nn.ModuleList([_double(1, f), _double(f, 2 * f), _double(2 * f, 4 * f)])
        self.bridge = _double(4 * f, 8 * f)
        act = nn.LeakyReLU(0.2, inplace=True)
        self.trans = nn.ModuleList([
            nn.Sequential(nn.ConvTranspose2d(c, c, 3, stride=2, padding=1, output_padding=1), nn.BatchNorm2d(c), act)
            for c in (8 * f, 4 * f, 2 * f)
        ])
        self.up = nn.ModuleList([_double(12 * f, 4 * f), _double(6 * f, 2 * f), _double(3 * f, f)])
        self.out = _conv_bn(f, 1, nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for down in self.down:
            x = down(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.bridge(x)
        for trans, up, skip in zip(self.trans, self.up, reversed(skips), strict=True):
            x = up(torch.cat((trans(x), skip), dim=1))
        return self.out(x)
