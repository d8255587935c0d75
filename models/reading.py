"""Around the line recogniser: preparing lines, batching them, decoding CTC output.

Free of PyTorch, so the same code serves the network run by PyTorch (training, GPU) and by ONNX
Runtime (the gateway's CPU workers).
"""

from __future__ import annotations

import cv2
import numpy as np

#: Symbols seen on scanner overlays beyond printable ASCII (degrees, micro, plus-minus, squares,
#: accented names). The recogniser's alphabet, so the runtime owns it; the generator draws from it.
UNICODE_EXTRAS = "\u00b0\u00b5\u00b1\u00b2\u00b3\u00d7\u00b7\u00a9\u00ae\u00e9\u00fc\u00f6\u00e4\u00c5\u00f8"
#: Printable ASCII plus symbols seen on scanner overlays.  Index 0 is the CTC blank.
CHARSET = "".join(chr(c) for c in range(32, 127)) + UNICODE_EXTRAS
HEIGHT = 32
MAX_WIDTH = 1024
#: Horizontal down-sampling of the conv stack (one CTC step per this many input pixels).
TIME_STRIDE = 4
#: Lines (regions, for the verifier) per network call.
READ_BATCH = 32
#: Width of the region verifier's input (`models.verifier`): regions are drawn at HEIGHT px high
#: from the left, zero-padded on the right, and squeezed into it when longer.
REGION_WIDTH = 256


def normalize_text(text: str) -> str:
    """Labels and predictions are compared with single spaces and unknown characters dropped."""
    kept = "".join(c for c in text if c in CHARSET)
    return " ".join(kept.split())


def encode(text: str) -> list[int]:
    return [CHARSET.index(c) + 1 for c in normalize_text(text)]


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


def prepare_region(gray: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """A region of a uint8 greyscale image -> the verifier's float32 HEIGHT x REGION_WIDTH input.

    The region keeps a quarter of its short side (plus 2 px) of surroundings, because text is a line
    on a quiet background and a texture goes on past the box; but contrast and polarity come from
    the region alone, as ``prepare_line`` has them, so that light text on a grey label over a dark
    image is not washed out by the dark. Tall regions are turned as the recogniser reads them.
    """
    x0, y0, x1, y1 = (int(v) for v in box)
    h, w = gray.shape[:2]
    m = min(x1 - x0, y1 - y0) // 4 + 2
    ya, xa = max(0, y0 - m), max(0, x0 - m)
    crop = gray[ya:min(h, y1 + m), xa:min(w, x1 + m)].astype(np.float32)
    lo, hi = np.percentile(gray[y0:y1, x0:x1], (2, 98))
    crop = np.clip((crop - lo) / max(hi - lo, 1.0), 0, 1)
    inner = crop[y0 - ya:y1 - ya, x0 - xa:x1 - xa]
    if np.median(np.concatenate([inner[0], inner[-1], inner[:, 0], inner[:, -1]])) > 0.5:
        crop = 1.0 - crop
    ch, cw = crop.shape
    if ch > 1.5 * cw and ch > 12:
        crop = np.ascontiguousarray(np.rot90(crop, 3))
        ch, cw = cw, ch
    width = int(np.clip(round(cw * HEIGHT / max(ch, 1)), 8, REGION_WIDTH))
    resized = cv2.resize(crop, (width, HEIGHT), interpolation=cv2.INTER_AREA if ch > HEIGHT else cv2.INTER_LINEAR)
    out = np.zeros((HEIGHT, REGION_WIDTH), np.float32)
    out[:, :width] = resized
    return out


def batch_lines(lines: list[np.ndarray]) -> np.ndarray:
    """(N, 1, HEIGHT, W) float32, zero-padded on the right to the widest line."""
    width = max(line.shape[1] for line in lines)
    width += (-width) % TIME_STRIDE
    x = np.zeros((len(lines), 1, HEIGHT, width), np.float32)
    for i, line in enumerate(lines):
        x[i, 0, :, : line.shape[1]] = line
    return x


def greedy_decode(log_probs) -> list[tuple[str, float]]:
    """Best path decoding of (N, T, classes) log-probs (array or tensor); confidence = mean
    max-probability over non-blank steps."""
    if hasattr(log_probs, "detach"):
        log_probs = log_probs.detach().cpu().numpy()
    results = []
    for idx, lp in zip(log_probs.argmax(-1), log_probs.max(-1)):
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
