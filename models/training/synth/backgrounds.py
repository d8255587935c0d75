"""Procedural medical-like backgrounds in display space ([0, 1] float, HxW or HxWx3).

Cheap numpy/OpenCV recipes per modality are enough: the detector must learn that anatomy,
speckle, UI chrome and edges are *not* text.  Real pixel data from pydicom's bundled test images
(those without burned-in text) adds natural texture. A machine without those files or their
decoders (a GPU lent without network access) reads the same frames from the file named by the
environment variable SYNTH_REAL_FRAMES, written here by ``write_real_frames``.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
import warnings

import cv2
import numpy as np

#: pydicom test files that carry burned-in text (must not be used as "clean" backgrounds).
TEXT_BEARING = ("US1", "examples_rgb", "examples_ybr", "examples_jpeg2k", "TextGBR", "JLSL", "JLSN",
                "ybr_color", "color-p", "color-pl", "color3d", "rtdose", "SC_", "RGB", "bad_sequence", "VL")
#: Large files decode slowly and add little variety.
MAX_FILE_BYTES = 1_500_000
REAL_MODALITIES = {"CT", "MR", "CR", "DX", "MG", "NM", "PT", "XA", "RF", "RTIMAGE"}


def smooth_noise(rng: np.random.Generator, h: int, w: int, scale: float) -> np.ndarray:
    """Low-frequency noise in [0, 1] (upsampled random grid)."""
    gh, gw = max(2, int(h / scale)), max(2, int(w / scale))
    grid = rng.random((gh, gw)).astype(np.float32)
    out = cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
    return np.clip(out, 0, 1)


def blobs(rng: np.random.Generator, h: int, w: int, n: int, bright: tuple[float, float]) -> np.ndarray:
    img = np.zeros((h, w), np.float32)
    for _ in range(n):
        c = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        axes = (int(rng.integers(w // 20 + 1, w // 3 + 2)), int(rng.integers(h // 20 + 1, h // 3 + 2)))
        cv2.ellipse(img, c, axes, float(rng.uniform(0, 180)), 0, 360, float(rng.uniform(*bright)), -1)
    return img


def ct(rng, h, w):
    img = np.zeros((h, w), np.float32)
    cv2.ellipse(img, (w // 2, h // 2), (int(w * rng.uniform(0.3, 0.45)), int(h * rng.uniform(0.25, 0.42))), 0, 0, 360, 0.45, -1)
    img += blobs(rng, h, w, int(rng.integers(3, 10)), (0.05, 0.35)) * (img > 0)
    if rng.random() < 0.7:  # spine / bone
        cv2.circle(img, (w // 2 + int(rng.integers(-20, 20)), int(h * 0.7)), int(min(h, w) * 0.06), 0.95, -1)
    if rng.random() < 0.5:  # table
        cv2.rectangle(img, (int(w * 0.1), int(h * 0.88)), (int(w * 0.9), int(h * 0.9)), 0.6, -1)
    img += (smooth_noise(rng, h, w, 6) - 0.5) * 0.1 * (img > 0)
    return cv2.GaussianBlur(img, (0, 0), rng.uniform(0.5, 2.0))


def xray(rng, h, w):
    base = smooth_noise(rng, h, w, rng.uniform(40, 200)) * 0.5 + 0.2
    img = base + blobs(rng, h, w, int(rng.integers(2, 6)), (-0.2, 0.3))
    for _ in range(int(rng.integers(0, 6))):  # ribs / bones
        y = int(rng.integers(0, h))
        cv2.ellipse(img, (w // 2, y), (int(w * 0.4), int(h * 0.08)), 0, 180, 360, float(rng.uniform(0.1, 0.3)), int(rng.integers(3, 12)))
    if rng.random() < 0.4:  # collimation edges
        m = int(rng.integers(5, max(6, w // 8)))
        img[:, :m] = img[:, -m:] = float(rng.uniform(0.8, 1.0))
    img = cv2.GaussianBlur(img, (0, 0), rng.uniform(1, 4))
    return np.clip(img, 0, 1)


def mr(rng, h, w):
    img = blobs(rng, h, w, int(rng.integers(4, 12)), (0.1, 0.8))
    img *= smooth_noise(rng, h, w, 30) * 0.6 + 0.4
    img = cv2.GaussianBlur(img, (0, 0), rng.uniform(1, 3))
    img += np.abs(rng.normal(0, 0.02, (h, w))).astype(np.float32)
    return np.clip(img, 0, 1)


def mammo(rng, h, w):
    img = np.zeros((h, w), np.float32)
    side = w if rng.random() < 0.5 else 0
    cv2.ellipse(img, (side, h // 2), (int(w * rng.uniform(0.5, 0.8)), int(h * 0.45)), 0, 0, 360, 0.5, -1)
    img *= smooth_noise(rng, h, w, 15) * 0.8 + 0.4
    return np.clip(cv2.GaussianBlur(img, (0, 0), 1.5), 0, 1)


def ultrasound(rng, h, w):
    img = np.zeros((h, w), np.float32)
    apex = (w // 2 + int(rng.integers(-w // 10, w // 10 + 1)), int(h * rng.uniform(0.02, 0.15)))
    radius = int(h * rng.uniform(0.6, 0.9))
    half = float(rng.uniform(25, 45))
    if rng.random() < 0.25:  # linear probe: rectangle
        cv2.rectangle(img, (int(w * 0.2), apex[1]), (int(w * 0.8), apex[1] + radius), 1.0, -1)
    else:
        cv2.ellipse(img, apex, (radius, radius), 90, -half, half, 1.0, -1)
    speckle = rng.rayleigh(0.25, (h, w)).astype(np.float32)
    speckle = cv2.GaussianBlur(speckle, (0, 0), 0.8)
    tissue = smooth_noise(rng, h, w, 25) * 0.6 + blobs(rng, h, w, 3, (-0.4, 0.2))
    img = img * np.clip(speckle * (0.4 + tissue), 0, 1)
    if rng.random() < 0.5:  # depth ticks at the fan edge
        for y in range(apex[1], min(h, apex[1] + radius), max(4, radius // 10)):
            cv2.line(img, (w - int(w * 0.08), y), (w - int(w * 0.08) + 5, y), 0.9, 1)
    return np.clip(img, 0, 1)


def endoscopy(rng, h, w):
    img = np.zeros((h, w, 3), np.float32)
    base = np.stack([smooth_noise(rng, h, w, s) for s in (20, 25, 30)], -1)
    tint = np.array([rng.uniform(0.6, 1), rng.uniform(0.2, 0.5), rng.uniform(0.15, 0.4)], np.float32)
    mask = np.zeros((h, w), np.float32)
    cv2.circle(mask, (w // 2 + int(rng.integers(-w // 8, w // 8 + 1)), h // 2), int(min(h, w) * rng.uniform(0.35, 0.5)), 1.0, -1)
    img = (base * 0.6 + 0.3) * tint * mask[..., None]
    for _ in range(int(rng.integers(0, 5))):  # specular highlights
        cv2.circle(img, (int(rng.integers(0, w)), int(rng.integers(0, h))), int(rng.integers(2, 10)), (1, 1, 1), -1)
    return np.clip(cv2.GaussianBlur(img, (0, 0), 1.2), 0, 1)


def screen(rng, h, w):
    """Secondary capture: a UI with panels, buttons, graphs and a viewport."""
    bg = float(rng.uniform(0, 0.9))
    img = np.full((h, w, 3), bg, np.float32)
    for _ in range(int(rng.integers(2, 9))):
        x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
        x1, y1 = x0 + int(rng.integers(10, w // 2 + 11)), y0 + int(rng.integers(8, h // 3 + 9))
        color = rng.uniform(0, 1, 3)
        cv2.rectangle(img, (x0, y0), (x1, y1), color.tolist(), -1 if rng.random() < 0.7 else 1)
    if rng.random() < 0.6:  # viewport with anatomy
        x0, y0 = int(w * rng.uniform(0.05, 0.3)), int(h * rng.uniform(0.05, 0.3))
        x1, y1 = int(w * rng.uniform(0.6, 0.95)), int(h * rng.uniform(0.6, 0.95))
        view = _modality_fn(rng, ("ct", "mr", "xray"))(rng, y1 - y0, x1 - x0)
        img[y0:y1, x0:x1] = view[..., None]
    for _ in range(int(rng.integers(0, 4))):  # plot curves
        xs = np.linspace(0, w - 1, 50)
        ys = h / 2 + np.cumsum(rng.normal(0, h / 60, 50))
        pts = np.stack([xs, np.clip(ys, 0, h - 1)], 1).astype(np.int32)
        cv2.polylines(img, [pts], False, rng.uniform(0, 1, 3).tolist(), 1)
    return img


def pattern(rng, h, w):
    """Test-card elements: colour bars, gratings, checkerboards, grids, gradients (text-like strokes, no text)."""
    img = np.full((h, w, 3), float(rng.uniform(0.2, 0.6)), np.float32)
    for _ in range(int(rng.integers(2, 7))):
        x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
        x1, y1 = min(w, x0 + int(rng.integers(20, w // 2 + 21))), min(h, y0 + int(rng.integers(20, h // 2 + 21)))
        kind = int(rng.integers(5))
        if kind == 0:  # colour bars
            n = int(rng.integers(3, 9))
            for k in range(n):
                img[y0:y1, x0 + (x1 - x0) * k // n: x0 + (x1 - x0) * (k + 1) // n] = rng.uniform(0, 1, 3)
        elif kind == 1:  # grating of varying frequency
            xs = np.arange(x1 - x0, dtype=np.float32)
            freq = rng.uniform(0.05, 0.8) * (1 + xs / max(1, x1 - x0) * rng.uniform(0, 3))
            img[y0:y1, x0:x1] = (np.sin(xs * freq) > 0).astype(np.float32)[None, :, None]
        elif kind == 2:  # checkerboard
            cell = int(rng.integers(4, 40))
            yy, xx = np.mgrid[y0:y1, x0:x1]
            img[y0:y1, x0:x1] = (((yy // cell) + (xx // cell)) % 2).astype(np.float32)[..., None] * rng.uniform(0.5, 1)
        elif kind == 3:  # grid lines
            step = int(rng.integers(8, 60))
            color = rng.uniform(0, 1, 3).tolist()
            for x in range(x0, x1, step):
                cv2.line(img, (x, y0), (x, y1), color, 1)
            for y in range(y0, y1, step):
                cv2.line(img, (x0, y), (x1, y), color, 1)
        else:  # gradient / step wedge
            steps = int(rng.integers(2, 12))
            ramp = np.floor(np.linspace(0, steps, x1 - x0, endpoint=False)) / steps
            img[y0:y1, x0:x1] = ramp[None, :, None].astype(np.float32)
    if rng.random() < 0.5:
        cv2.circle(img, (w // 2, h // 2), int(min(h, w) * rng.uniform(0.2, 0.45)), rng.uniform(0, 1, 3).tolist(), int(rng.integers(1, 6)))
    return np.clip(img, 0, 1)


def photo(rng, h, w):
    """Natural-photo-like colour image: multi-scale colour noise and soft shapes (fundus, dental, objects)."""
    img = np.stack([smooth_noise(rng, h, w, rng.uniform(8, 80)) for _ in range(3)], -1) * rng.uniform(0.3, 1.0, 3)
    for _ in range(int(rng.integers(3, 15))):
        c = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        axes = (int(rng.integers(3, w // 4 + 4)), int(rng.integers(3, h // 4 + 4)))
        cv2.ellipse(img, c, axes, float(rng.uniform(0, 180)), 0, 360, rng.uniform(0, 1, 3).tolist(), -1)
    for _ in range(int(rng.integers(0, 8))):  # thin structures: vessels, edges, stems
        pts = np.cumsum(rng.normal(0, 8, (12, 2)), 0) + [rng.integers(0, w), rng.integers(0, h)]
        cv2.polylines(img, [pts.astype(np.int32)], False, rng.uniform(0, 1, 3).tolist(), int(rng.integers(1, 4)))
    img = cv2.GaussianBlur(img.astype(np.float32), (0, 0), rng.uniform(0.5, 2.5))
    return np.clip(img + rng.normal(0, 0.02, img.shape).astype(np.float32), 0, 1)


def flat(rng, h, w):
    img = np.full((h, w), float(rng.uniform(0, 1)), np.float32)
    return np.clip(img + smooth_noise(rng, h, w, 100) * 0.1, 0, 1)


def bundled_test_files() -> list[str]:
    """pydicom's own test files plus the pydicom-data package's, found on disk.

    (`pydicom.data.get_testdata_files` would try to download missing files over the network.)
    """
    import pydicom

    roots = [Path(pydicom.__file__).parent / "data" / "test_files"]
    try:
        import data_store  # the pydicom-data package

        roots.append(Path(data_store.__file__).parent / "data")
    except ImportError:
        pass
    files: set[str] = set()
    for root in roots:
        if root.is_dir():
            files.update(str(p) for p in root.rglob("*.dcm"))
    return sorted(files)


@functools.lru_cache(maxsize=1)
def real_frames() -> tuple[np.ndarray, ...]:
    """Greyscale frames (display-rendered, <= 512 px) of pydicom's bundled images without text."""
    saved = os.environ.get("SYNTH_REAL_FRAMES")
    if saved:
        with np.load(saved) as frames:
            return tuple(frames[f"frame_{i}"] for i in range(len(frames.files)))
    return _decoded_frames()


def write_real_frames(path: str | Path) -> int:
    """Save ``real_frames()`` for SYNTH_REAL_FRAMES; returns how many there are."""
    frames = real_frames()
    np.savez_compressed(path, **{f"frame_{i}": frame for i, frame in enumerate(frames)})
    return len(frames)


def _decoded_frames() -> tuple[np.ndarray, ...]:
    frames: list[np.ndarray] = []
    try:
        import pydicom

        from models.render import display_image
    except ImportError:
        return ()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for path in bundled_test_files():
            name = path.rsplit("/", 1)[-1]
            if any(tag in name for tag in TEXT_BEARING) or os.path.getsize(path) > MAX_FILE_BYTES:
                continue
            try:
                ds = pydicom.dcmread(path)
                if ds.get("Modality") not in REAL_MODALITIES or "PixelData" not in ds:
                    continue
                if not str(ds.get("PhotometricInterpretation", "")).startswith("MONOCHROME"):
                    continue
                arr = ds.pixel_array
                frame = arr[0] if arr.ndim == 3 else arr
                if frame.ndim != 2 or min(frame.shape) < 32:
                    continue
                img = display_image(frame, ds).astype(np.float32) / 255.0
                scale = 512 / max(img.shape)
                if scale < 1:
                    img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
                frames.append(img)
            except Exception:
                continue
    return tuple(frames)


def real(rng, h, w):
    frames = real_frames()
    if not frames:
        return mr(rng, h, w)
    img = frames[int(rng.integers(len(frames)))]
    img = cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.5:
        img = img[:, ::-1]
    return np.ascontiguousarray(img)


RECIPES = {"ct": ct, "xray": xray, "mr": mr, "mammo": mammo, "us": ultrasound, "endo": endoscopy,
           "screen": screen, "flat": flat, "real": real, "pattern": pattern, "photo": photo}


def _modality_fn(rng, names):
    return RECIPES[names[int(rng.integers(len(names)))]]


def background(rng: np.random.Generator, kind: str, h: int, w: int) -> np.ndarray:
    return RECIPES[kind](rng, h, w).astype(np.float32)
