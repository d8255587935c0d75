"""Train the CRNN line recogniser with CTC on lines cut from synthetic samples.

    python -m models.training.train_recognizer --minutes 45 --out models/weights

Crops are cut around the ground-truth line boxes with random margins that mimic the detector's
boxes, from the same rendered images the detector sees (backgrounds, storage, JPEG and all).
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
from models.recognizer import (
    CRNN,
    MAX_WIDTH,
    TIME_STRIDE,
    batch_lines,
    encode,
    prepare_line,
)
from models.render import to_gray
from models.training.loop import TrainConfig, config_from_command_line, fit, one_thread_worker, save_weights
from models.training.synth import SynthConfig, generate
from models.training.widen import widened

RECOGNIZER_VERSION = "recognizer-1.6"


@dataclass
class RecognizerTrainConfig(TrainConfig):
    seed: int = 2
    batch: int = 32
    pool_batches: int = 8  # lines are width-sorted in pools of this many batches
    max_train_width: int = 640  # longer lines are skipped in training (they still read at inference)
    hidden: int = 96
    width: int = 16  # the first convolution's channels (`models.recognizer.CRNN`)
    real_backgrounds: bool = True
    init: str = ""  # warm start from a checkpoint (.pt) written by this script; a narrower one is widened
    # Share of the lines at least LARGE_LINE px tall that are trained on (1: all). Two thirds of the
    # errors are on lines under 8 px; below 1, more of each batch is small text.
    large_line_keep: float = 1.0
    # Share of lines drawn in other proportions (``restyle``): narrower or wider letters, slanted
    # or upright. 0 leaves every line as rendered.
    style_augment: float = 0.0
    # Share of greyscale images whose background overflowed 8 bits before the text was burned in
    # (SynthConfig.overflow): text over speckled wrap bands. 0 leaves every image as before.
    overflow: float = 0.0
    # Crops cut from each drawn line, each with its own margins (and proportions). Drawing a sample
    # costs far more than cutting lines from it (two views: 1.8x the batches a second), and a lent
    # GPU waits on the drawing. 1 cuts each line once, as before.
    views_per_line: int = 1


#: Lines at least this tall (short side of the box, original pixels) count as large for ``large_line_keep``.
LARGE_LINE = 12


def crop_line(gray: np.ndarray, box, rng: np.random.Generator | None = None, margin: float = 0.25) -> np.ndarray:
    """Cut a line with margins (random in training); `upright` turns a rotated one back."""
    x0, y0, x1, y1 = box
    short = min(x1 - x0, y1 - y0)
    if rng is not None:
        m = [short * rng.uniform(-0.05, 0.45) + rng.uniform(0, 3) for _ in range(4)]
    else:
        m = [short * margin] * 4
    h, w = gray.shape
    xa, ya = int(max(0, x0 - m[0])), int(max(0, y0 - m[1]))
    xb, yb = int(min(w, x1 + m[2])), int(min(h, y1 + m[3]))
    crop = gray[ya:max(yb, ya + 1), xa:max(xb, xa + 1)]
    return crop


def restyle(crop: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The line in another typeface's proportions: letters 0.7-1.3x as wide, slanted up to 0.25
    either way. Scanners burn in condensed and oblique faces that no font list covers."""
    h, w = crop.shape
    widen, slant = rng.uniform(0.7, 1.3), rng.uniform(-0.25, 0.25)
    width = max(1, int(round(w * widen + abs(slant) * h)))
    # x' = widen * x - slant * (y - h / 2), centred in the wider canvas
    matrix = np.float32([[widen, -slant, slant * h / 2 + abs(slant) * h / 2], [0, 1, 0]])
    return cv2.warpAffine(crop, matrix, (width, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def lines_from_sample(sample, rng: np.random.Generator, large_line_keep: float = 1.0, style_augment: float = 0.0,
                      views: int = 1):
    gray = to_gray(sample.image)
    out = []
    for line in sample.lines:
        label = encode(line.text)
        if not label:
            continue
        x0, y0, x1, y1 = line.box
        if large_line_keep < 1.0 and min(x1 - x0, y1 - y0) >= LARGE_LINE and rng.random() >= large_line_keep:
            continue
        for _ in range(views):
            crop = crop_line(gray, line.box, rng)
            if line.rotated:
                # training sees the upright reading; direction is resolved at inference by confidence
                crop = upright(crop, line)
            if style_augment and rng.random() < style_augment:
                crop = restyle(crop, rng)
            prepared = prepare_line(crop)
            if prepared.shape[1] >= MAX_WIDTH or prepared.shape[1] // TIME_STRIDE < 2 * len(label) + 1:
                continue
            out.append((prepared, label))
    return out


def upright(crop: np.ndarray, line) -> np.ndarray:
    """Undo the generator's quarter turns, so that the line reads left to right."""
    return np.ascontiguousarray(np.rot90(crop, -line.turns))


class LineStream(IterableDataset):
    """Yields ready batches of lines of similar width (sorting a pool first cuts padding several-fold)."""

    def __init__(self, cfg: RecognizerTrainConfig, synth: SynthConfig):
        self.cfg, self.synth = cfg, synth

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        worker = info.id if info else 0
        stride = info.num_workers if info else 1
        rng = np.random.default_rng([self.cfg.seed, 11, worker])
        index = worker
        pool: list = []
        while True:
            while len(pool) < self.cfg.batch * self.cfg.pool_batches:
                sample = generate(self.cfg.seed, index, self.synth)
                index += stride
                pool.extend(item for item in lines_from_sample(sample, rng, self.cfg.large_line_keep,
                                                               self.cfg.style_augment, self.cfg.views_per_line)
                            if item[0].shape[1] <= self.cfg.max_train_width)
            pool.sort(key=lambda item: item[0].shape[1])
            batches = [pool[i:i + self.cfg.batch] for i in range(0, len(pool) - self.cfg.batch + 1, self.cfg.batch)]
            pool = pool[len(batches) * self.cfg.batch:]
            for k in rng.permutation(len(batches)):
                yield collate(batches[k])


def collate(items):
    lines, labels = zip(*items)
    x = torch.from_numpy(batch_lines(list(lines)))
    targets = torch.tensor([c for label in labels for c in label], dtype=torch.long)
    target_lengths = torch.tensor([len(label) for label in labels], dtype=torch.long)
    input_lengths = torch.tensor([line.shape[1] // TIME_STRIDE for line in lines], dtype=torch.long)
    return x, targets, input_lengths, target_lengths


def ctc_loss(model, batch) -> torch.Tensor:
    x, targets, input_lengths, target_lengths = batch
    log_probs = model(x).transpose(0, 1)  # T, N, C
    input_lengths = torch.clamp(input_lengths, max=log_probs.shape[0])
    return F.ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=0, zero_infinity=True)


def save(model: CRNN, cfg: RecognizerTrainConfig, step: int, out: Path, extra: dict | None = None) -> None:
    meta = {"version": RECOGNIZER_VERSION, "hidden": cfg.hidden, "width": cfg.width, "step": step, "train_config": asdict(cfg), **(extra or {})}
    save_weights(model, out, "recognizer", meta)


def train(cfg: RecognizerTrainConfig, log=print) -> list[float]:
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    synth = SynthConfig(font_split="train", real_backgrounds=cfg.real_backgrounds, overflow=cfg.overflow)
    loader = DataLoader(LineStream(cfg, synth), batch_size=None, num_workers=cfg.workers,
                        persistent_workers=cfg.workers > 0, worker_init_fn=one_thread_worker)
    model = CRNN(cfg.hidden, width=cfg.width)
    if cfg.init:
        state, meta = load_checkpoint(Path(cfg.init))
        start = CRNN(meta.get("hidden", 96), width=meta.get("width", 16))
        start.load_state_dict(state)
        model = widened(start, cfg.hidden, cfg.width)
        log(f"warm start from {cfg.init} (step {meta.get('step')})")
    return fit(model, loader, lambda batch: ctc_loss(model, batch), cfg,
               save=lambda step, metrics: save(model, cfg, step, Path(cfg.out), metrics),
               log=log, warmup=100, clip=5.0)


def main(argv=None) -> None:
    cfg = config_from_command_line(RecognizerTrainConfig, argv, description=__doc__)
    train(cfg, log=lambda m: print(m, flush=True))


if __name__ == "__main__":
    main()
