"""PriCheXy-Net's deformation at any resolution, in NumPy and OpenCV (no PyTorch).

The generator sees a small rendering of the radiograph (64 px for the shipped weights) and
returns a smoothed flow field ``f`` (two channels, x then y, each in [-1, 1] before smoothing). The
deformed image is, as in Packhäuser et al. 2023 (arXiv 2209.11531, section 2.1: the grid
``identity - mu * flow`` fed to ``grid_sample``)::

    x'(p) = x(p - mu * f(p))      p in the normalised coordinates [-1, 1] of align_corners=True

Because ``p`` is normalised, one flow serves every matrix size: the flow is interpolated
bilinearly to the stored image's rows and columns, turned into pixel offsets
(``mu * f_x * (columns - 1) / 2``, likewise for rows), and the stored values are resampled with
bilinear interpolation, coordinates clamped to the image (``grid_sample``'s border padding).
OpenCV's ``remap`` resolves positions to 1/32 pixel, which keeps re-runs bit-identical across
small floating-point differences of the flow; on a 2048 px radiograph the largest displacement at
mu = 0.01 is about 10 pixels.
"""

from __future__ import annotations

import cv2
import numpy as np

KERNEL_SIZE = 9
SIGMA = 2.0


def gaussian_1d(size: int = KERNEL_SIZE, sigma: float = SIGMA) -> np.ndarray:
    """The normalised 1-D Gaussian; its outer product with itself is the paper's 2-D kernel."""
    d = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-(d ** 2) / (2 * sigma ** 2))
    return (g / g.sum()).astype(np.float32)


def smooth_flow(flow: np.ndarray, size: int = KERNEL_SIZE, sigma: float = SIGMA) -> np.ndarray:
    """Each channel of (2, H, W) convolved with the Gaussian, zero padding (as the paper's
    ``conv2d``); what ``FlowGenerator`` computes after the U-Net, for a flow from elsewhere."""
    k = gaussian_1d(size, sigma)
    return np.stack([cv2.sepFilter2D(np.ascontiguousarray(c, dtype=np.float32), cv2.CV_32F, k, k,
                                     borderType=cv2.BORDER_CONSTANT) for c in flow])


def sampling_maps(flow: np.ndarray, mu: float, rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """Source coordinates (pixels) of every output pixel of a ``rows`` x ``cols`` image."""
    fx, fy = (np.ascontiguousarray(c, dtype=np.float32) for c in flow)
    if fx.shape != (rows, cols):
        fx = cv2.resize(fx, (cols, rows), interpolation=cv2.INTER_LINEAR)
        fy = cv2.resize(fy, (cols, rows), interpolation=cv2.INTER_LINEAR)
    xs = np.arange(cols, dtype=np.float32)[None, :]
    ys = np.arange(rows, dtype=np.float32)[:, None]
    map_x = np.clip(xs - np.float32(mu * (cols - 1) / 2) * fx, 0, cols - 1)
    map_y = np.clip(ys - np.float32(mu * (rows - 1) / 2) * fy, 0, rows - 1)
    return map_x, map_y


def warp(image: np.ndarray, flow: np.ndarray, mu: float) -> np.ndarray:
    """``image`` (rows, cols), any numeric dtype, deformed by ``flow`` (2, h, w) at strength ``mu``;
    returns float32 (the caller rounds back to its stored type)."""
    rows, cols = image.shape
    map_x, map_y = sampling_maps(flow, mu, rows, cols)
    return cv2.remap(np.ascontiguousarray(image, dtype=np.float32), map_x, map_y, cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)


def max_displacement(flow: np.ndarray, mu: float, rows: int, cols: int) -> float:
    """The largest move of any pixel, in pixels of a ``rows`` x ``cols`` image (for the audit)."""
    fx, fy = np.abs(flow[0]).max(), np.abs(flow[1]).max()
    return float(mu * max(fx * (cols - 1), fy * (rows - 1)) / 2)
