"""Train the text detector on on-the-fly synthetic samples.

    python -m models.training.train_detector --minutes 45 --out models/weights

Training is time-boxed (the learning rate follows a cosine over the wall-clock budget) so it fits a
shared CPU; a checkpoint is written every few minutes so usable weights exist early.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, IterableDataset

from models.checkpoints import load_checkpoint
from models.detector import STRIDE, TextDetector, target_mask, working_scale
from models.render import detector_view, to_gray
from models.training.loop import TrainConfig, config_from_command_line, fit, one_thread_worker, save_weights
from models.training.synth import SynthConfig, generate
from models.training.widen import widened_detector

DETECTOR_VERSION = "detector-1.1"


@dataclass
class DetectorTrainConfig(TrainConfig):
    lr: float = 3e-3
    crop: int = 320
    crops_per_sample: int = 2
    width: int = 16
    real_backgrounds: bool = True
    init: str = ""  # warm start from a checkpoint (.pt) written by this script; a narrower one is widened
    hard_negatives: float = 0.0  # probability per image of procedural hard negatives (models/training/synth/hard_negatives.py)
    overflow: float = 0.0  # probability per greyscale image of a background that overflowed 8 bits (SynthConfig.overflow)
    graphics: float = 0.0  # probability per image of scanner graphics, rulers to grids (SynthConfig.graphics)
    # Train on models.render.detector_view (luma half equalised locally), what inference shows the
    # detector since looks-2, instead of the plain luma detector-1.1 was trained on. Tried from 1.1
    # (model card): more precise, less recall, so not the default; that run is shipped beside
    # detector-1.1 as the second detector (models/weights/detector_eqview.pt).
    equalised_view: bool = False
    # Share of the crops shown as their negative: bright text on dark, the detector's habit, becomes
    # dark text on bright, where it is weaker (shown the negative of the image, it finds lines it
    # missed: a dark age on bright tissue, red type on grey). 0 draws nothing, so crops are as before.
    # Tried from 1.1 at stop 23 (model card): it found none of those lines and lost PHI on the real
    # files, so it is off by default.
    invert: float = 0.0


def crops_from_sample(sample, rng: np.random.Generator, crop: int, n: int, equalised_view: bool = False,
                      invert: float = 0.0):
    """Random crops (greyscale float image, target mask) at the detector's working scale; a share
    ``invert`` of them as their negative."""
    image = detector_view(sample.image) if equalised_view else to_gray(sample.image)
    h, w = image.shape
    scale = working_scale(h, w)
    boxes = [tuple(v * scale for v in line.box) for line in sample.lines]
    if scale != 1.0:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
    h, w = image.shape
    if h < crop or w < crop:
        pad_val = int(np.median(image[:4]))
        image = cv2.copyMakeBorder(image, 0, max(0, crop - h), 0, max(0, crop - w), cv2.BORDER_CONSTANT, value=pad_val)
    mask = target_mask(boxes, image.shape[0], image.shape[1])
    out = []
    for _ in range(n):
        # half the crops are centred on a text line, the rest anywhere
        if boxes and rng.random() < 0.6:
            bx = boxes[int(rng.integers(len(boxes)))]
            cx, cy = (bx[0] + bx[2]) / 2 + rng.uniform(-crop / 3, crop / 3), (bx[1] + bx[3]) / 2 + rng.uniform(-crop / 3, crop / 3)
            x, y = int(np.clip(cx - crop / 2, 0, image.shape[1] - crop)), int(np.clip(cy - crop / 2, 0, image.shape[0] - crop))
        else:
            x, y = int(rng.integers(0, image.shape[1] - crop + 1)), int(rng.integers(0, image.shape[0] - crop + 1))
        x, y = x - x % STRIDE, y - y % STRIDE
        img = image[y:y + crop, x:x + crop]
        tgt = mask[y // STRIDE:(y + crop) // STRIDE, x // STRIDE:(x + crop) // STRIDE]
        if rng.random() < 0.5:  # mirrored text exists (lead markers); flips add variety
            img, tgt = img[:, ::-1], tgt[:, ::-1]
        if invert and rng.random() < invert:
            img = 255 - img
        out.append((np.ascontiguousarray(img, dtype=np.float32) / 255.0, np.ascontiguousarray(tgt)))
    return out


class CropStream(IterableDataset):
    def __init__(self, cfg: DetectorTrainConfig, synth: SynthConfig):
        self.cfg, self.synth = cfg, synth

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        worker = info.id if info else 0
        rng = np.random.default_rng([self.cfg.seed, 7, worker])
        index = worker
        stride = info.num_workers if info else 1
        while True:
            sample = generate(self.cfg.seed, index, self.synth)
            index += stride
            for img, tgt in crops_from_sample(sample, rng, self.cfg.crop, self.cfg.crops_per_sample,
                                              self.cfg.equalised_view, self.cfg.invert):
                yield torch.from_numpy(img)[None], torch.from_numpy(tgt)[None]


def detector_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """BCE (with hard-negative emphasis) + dice: dice keeps thin small-text masks from vanishing."""
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    pos = target > 0.5
    n_pos = int(pos.sum())
    neg_loss = bce[~pos]
    k = min(neg_loss.numel(), max(3 * n_pos, 1024))
    hard_neg = neg_loss.topk(k).values.mean() if k > 0 else bce.new_tensor(0.0)
    pos_loss = bce[pos].mean() if n_pos else bce.new_tensor(0.0)
    prob = torch.sigmoid(logits)
    dice = 1 - (2 * (prob * target).sum() + 1) / (prob.sum() + target.sum() + 1)
    return pos_loss + hard_neg + 0.5 * bce.mean() + dice


def save(model: TextDetector, cfg: DetectorTrainConfig, step: int, out: Path, extra: dict | None = None) -> None:
    meta = {"version": DETECTOR_VERSION, "width": cfg.width, "step": step, "train_config": asdict(cfg), **(extra or {})}
    save_weights(model, out, "detector", meta)


def train(cfg: DetectorTrainConfig, log=print) -> list[float]:
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    synth = SynthConfig(font_split="train", real_backgrounds=cfg.real_backgrounds, hard_negatives=cfg.hard_negatives,
                        overflow=cfg.overflow, graphics=cfg.graphics)
    loader = DataLoader(CropStream(cfg, synth), batch_size=cfg.batch, num_workers=cfg.workers,
                        persistent_workers=cfg.workers > 0, worker_init_fn=one_thread_worker)
    model = TextDetector(cfg.width)
    if cfg.init:
        state, meta = load_checkpoint(Path(cfg.init))
        start = TextDetector(meta.get("width", 16))
        start.load_state_dict(state)
        model = widened_detector(start, cfg.width)
        log(f"warm start from {cfg.init} (step {meta.get('step')})")
    return fit(model, loader, lambda batch: detector_loss(model(batch[0]), batch[1]), cfg,
               save=lambda step, metrics: save(model, cfg, step, Path(cfg.out), metrics),
               log=log, warmup=50)


def main(argv=None) -> None:
    cfg = config_from_command_line(DetectorTrainConfig, argv, description=__doc__)
    train(cfg, log=lambda m: print(m, flush=True))


if __name__ == "__main__":
    main()
