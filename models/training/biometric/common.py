"""What the biometric trainers share: AUC, augmentation, checkpoints, logging, the command line."""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

#: Where trained networks go unless told otherwise (ignored by git: ``/var/``).
WORK = Path("var/biometric")
#: The shipped weights: the generator's export, and the verifier and classifier it was trained against.
SHIPPED = Path(__file__).resolve().parents[2] / "weights"


def fixed_network(work: Path, name: str) -> Path:
    """``name``.pt (verifier, classifier) of the work folder, else the shipped
    ``models/weights/biometric_<name>.pt``."""
    path = Path(work) / f"{name}.pt"
    return path if path.exists() else SHIPPED / f"biometric_{name}.pt"


def seed_all(seed: int) -> np.random.Generator:
    random.seed(seed)
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


def auc(y_true: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U, ties counted half); NaN without both classes."""
    y_true = np.asarray(y_true).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    n_pos, n_neg = int(y_true.sum()), int((~y_true).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2)[inverse]  # 1-based ranks, averaged over ties
    return float((ranks[y_true].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def augment(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Small random affine moves (rotation up to 7 degrees, scale 0.9-1.1, shift up to 3 % of the width) and
    contrast/brightness/gamma changes, per image: positioning and exposure differ between two
    radiographs of one patient, and the verifier should learn the patient, not the exposure."""
    n = x.shape[0]

    def uniform(lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(n, generator=generator)

    angle = uniform(-7, 7) * np.pi / 180
    scale = uniform(0.9, 1.1)
    tx, ty = uniform(-0.06, 0.06), uniform(-0.06, 0.06)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, padding_mode="border", align_corners=False)
    gamma = torch.exp(uniform(-0.25, 0.25)).view(n, 1, 1, 1)
    contrast = uniform(0.8, 1.2).view(n, 1, 1, 1)
    brightness = uniform(-0.08, 0.08).view(n, 1, 1, 1)
    x = x.clamp(0, 1) ** gamma
    return ((x - 0.5) * contrast + 0.5 + brightness).clamp(0, 1)


def save_checkpoint(model: torch.nn.Module, path: Path, meta: dict) -> None:
    """fp16 weights (buffers that are not floats as they are) and a JSON file of what made them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: (v.half() if v.is_floating_point() else v) for k, v in model.state_dict().items()}
    torch.save(state, path)
    path.with_suffix(".json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")


def load_checkpoint(model: torch.nn.Module, path: Path) -> torch.nn.Module:
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    return model.eval()


def read_meta(path: Path) -> dict:
    return json.loads(Path(path).with_suffix(".json").read_text())


class Log:
    """Prints with the elapsed time, and keeps the lines for the checkpoint's metadata."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.lines: list[str] = []

    def __call__(self, message: str) -> None:
        line = f"[{self.minutes:6.1f} min] {message}"
        self.lines.append(line)
        print(line, flush=True)

    @property
    def minutes(self) -> float:
        return (time.perf_counter() - self.start) / 60


def base_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--cxr", required=True, help="the shared chest radiograph folder (../shared/cxr)")
    parser.add_argument("--work", default=str(WORK), help="where trained networks are written")
    parser.add_argument("--size", type=int, default=64, help="image side the networks see")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--minutes", type=float, default=20.0, help="stop after this much wall-clock time")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    # the verifier's batches (train_verifier, and the attackers of evaluate)
    parser.add_argument("--patients", type=int, default=16, help="patients per verifier batch")
    parser.add_argument("--per-patient", type=int, default=2, help="images of each patient per verifier batch")
    parser.add_argument("--rounds", type=int, default=4, help="times each patient appears per verifier epoch")
    return parser


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """(N, H, W) float32 in [0, 1] -> (N, 1, H, W)."""
    return torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))[:, None]
