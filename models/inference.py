"""The API the gateway's pixel stage calls: find burned-in text regions and read them.

    finder = TextFinder.load()                 # models/weights by default
    regions = finder.detect(frame)             # list[TextRegion], original pixel coordinates
    texts = finder.read(frame, regions)        # one string per region (for PHI classification)

`detect` accepts a uint8 display image (HxW or HxWx3) or raw stored values of any other dtype
(rendered by percentiles; call `models.render.display_image(pixels, ds)` first to honour the
dataset's modality LUT / window / MONOCHROME1).  Large images are processed in overlapping tiles.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from models.detector import Postprocess, SAFETY_MARGIN, TextDetector, boxes_from_prob, working_scale
from models.recognizer import CRNN, batch_lines, greedy_decode, prepare_line
from models.render import as_display, to_gray

DEFAULT_WEIGHTS = Path(__file__).resolve().parent / "weights"
#: Tile side (working resolution) and overlap for large images.
TILE = 1024
OVERLAP = 96
#: Lines at most this many pixels wide are batched together through the recogniser.
READ_BATCH = 32


@dataclass(frozen=True)
class TextRegion:
    """A text line's box in original pixel coordinates (x1/y1 exclusive) and detector confidence."""

    x0: int
    y0: int
    x1: int
    y1: int
    score: float

    @property
    def box(self) -> tuple[int, int, int, int]:
        return (self.x0, self.y0, self.x1, self.y1)


def fuse_batchnorm(model: torch.nn.Module) -> torch.nn.Module:
    """Fold every Conv2d -> BatchNorm2d pair into the conv (eval only): ~15% faster on CPU."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    for module in model.modules():
        if isinstance(module, torch.nn.Sequential):
            children = list(module.children())
            for i in range(len(children) - 1):
                conv, bn = children[i], children[i + 1]
                if isinstance(conv, torch.nn.Conv2d) and isinstance(bn, torch.nn.BatchNorm2d):
                    module[i] = fuse_conv_bn_eval(conv, bn)
                    module[i + 1] = torch.nn.Identity()
    return model


def _load_state(path: Path):
    blob = torch.load(path, map_location="cpu", weights_only=True)
    state = {k: v.float() if v.is_floating_point() else v for k, v in blob["state_dict"].items()}
    return state, blob.get("meta", {})


class TextFinder:
    """Detector + recogniser pair loaded from a weights directory."""

    def __init__(self, detector: TextDetector, recognizer: CRNN | None, version: str, device: str = "cpu",
                 postprocess: Postprocess = Postprocess()):
        self.detector = fuse_batchnorm(detector.eval()).to(device)
        self.recognizer = fuse_batchnorm(recognizer.eval()).to(device) if recognizer is not None else None
        self.version = version
        self.device = device
        self.postprocess = postprocess

    @classmethod
    def load(cls, weights_dir: str | Path | None = None, device: str = "cpu") -> "TextFinder":
        root = Path(weights_dir) if weights_dir is not None else DEFAULT_WEIGHTS
        det_state, det_meta = _load_state(root / "detector.pt")
        detector = TextDetector(det_meta.get("width", 16))
        detector.load_state_dict(det_state)
        recognizer, rec_version = None, "none"
        if (root / "recognizer.pt").exists():
            rec_state, rec_meta = _load_state(root / "recognizer.pt")
            recognizer = CRNN(rec_meta.get("hidden", 96))
            recognizer.load_state_dict(rec_state)
            rec_version = rec_meta.get("version", "recognizer-?")
        version = f"{det_meta.get('version', 'detector-?')}+{rec_version}"
        return cls(detector, recognizer, version, device)

    # ----------------------------------------------------------------- detection
    def _prob_map(self, gray: np.ndarray) -> np.ndarray:
        """Probability map at stride 2 of a working-resolution greyscale image, tiled if large."""
        h, w = gray.shape
        out = np.zeros(((h + 1) // 2, (w + 1) // 2), np.float32)
        step = TILE - OVERLAP
        ys = list(range(0, max(1, h - OVERLAP), step)) if h > TILE else [0]
        xs = list(range(0, max(1, w - OVERLAP), step)) if w > TILE else [0]
        with torch.inference_mode():
            for y in ys:
                for x in xs:
                    tile = gray[y:y + TILE, x:x + TILE]
                    th, tw = tile.shape
                    ph, pw = (-th) % 16, (-tw) % 16
                    if ph or pw:
                        tile = cv2.copyMakeBorder(tile, 0, ph, 0, pw, cv2.BORDER_REPLICATE)
                    t = torch.from_numpy(tile.astype(np.float32) / 255.0)[None, None].to(self.device)
                    prob = torch.sigmoid(self.detector(t))[0, 0].cpu().numpy()
                    prob = prob[: (th + 1) // 2, : (tw + 1) // 2]
                    oy, ox = y // 2, x // 2
                    view = out[oy:oy + prob.shape[0], ox:ox + prob.shape[1]]
                    np.maximum(view, prob[: view.shape[0], : view.shape[1]], out=view)
        return out

    def detect(self, image: np.ndarray) -> list[TextRegion]:
        gray = to_gray(as_display(image))
        h, w = gray.shape
        scale = working_scale(h, w)
        work = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR) if scale != 1 else gray
        prob = self._prob_map(work)
        regions = []
        for x0, y0, x1, y1, score in boxes_from_prob(prob, scale, self.postprocess):
            m = SAFETY_MARGIN
            box = (int(np.floor(x0)) - m, int(np.floor(y0)) - m, int(np.ceil(x1)) + m, int(np.ceil(y1)) + m)
            box = (max(0, box[0]), max(0, box[1]), min(w, box[2]), min(h, box[3]))
            if box[2] > box[0] and box[3] > box[1]:
                regions.append(TextRegion(*box, score=round(score, 4)))
        regions.sort(key=lambda r: (r.y0, r.x0))
        return regions

    def detect_batch(self, images: list[np.ndarray]) -> list[list[TextRegion]]:
        return [self.detect(image) for image in images]

    # --------------------------------------------------------------- recognition
    def read(self, image: np.ndarray, regions: list[TextRegion]) -> list[str]:
        """Text of each region ('' when no recogniser is shipped). Tall regions are read both ways up."""
        if self.recognizer is None or not regions:
            return [""] * len(regions)
        gray = to_gray(as_display(image))
        crops: list[tuple[int, np.ndarray]] = []
        for i, r in enumerate(regions):
            crop = gray[r.y0:r.y1, r.x0:r.x1]
            if crop.size == 0:
                continue
            h, w = crop.shape
            if h > 1.5 * w and h > 12:
                crops.append((i, prepare_line(np.ascontiguousarray(np.rot90(crop, 3)))))
                crops.append((i, prepare_line(np.ascontiguousarray(np.rot90(crop, 1)))))
            else:
                crops.append((i, prepare_line(crop)))
        best: dict[int, tuple[str, float]] = {}
        order = sorted(range(len(crops)), key=lambda k: crops[k][1].shape[1])
        with torch.inference_mode():
            for start in range(0, len(order), READ_BATCH):
                chunk = [crops[k] for k in order[start:start + READ_BATCH]]
                log_probs = self.recognizer(batch_lines([c[1] for c in chunk]).to(self.device)).cpu()
                for (i, line), (text, conf) in zip(chunk, greedy_decode(log_probs)):
                    # padding frames past the line's own width are ignored by the greedy path in practice
                    if i not in best or conf > best[i][1]:
                        best[i] = (text, conf)
        return [best.get(i, ("", 0.0))[0] for i in range(len(regions))]
