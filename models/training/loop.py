"""What the trainers share: their common settings, the time-boxed optimisation loop and the
command line.

Training is budgeted in wall-clock minutes (or steps, whichever ends first) because it runs on
shared CPUs, or on a GPU lent for a quarter of an hour; the learning rate follows a cosine over
that budget after a linear warm-up, and a checkpoint is written every few minutes so that usable
weights exist early.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import torch


@dataclass
class TrainConfig:
    """The settings every trainer has; each trainer's configuration adds its own and may change
    these defaults."""

    seed: int = 1
    minutes: float = 45.0
    max_steps: int = 10**9
    batch: int = 8
    lr: float = 2e-3
    threads: int = 1  # PyTorch's threads in the training process
    workers: int = 1  # processes drawing examples; on a GPU, most of the machine's cores
    checkpoint_minutes: float = 4.0
    out: str = "models/weights"
    # Where the network trains: "cpu", or "cuda" on a lent GPU. The examples are drawn on the CPU
    # either way, and the weights are saved for the CPU.
    device: str = "cpu"


def one_thread_worker(_worker_id: int) -> None:
    """A data worker draws on one core: OpenCV would otherwise start a thread per core in every
    worker, and a GPU machine's 14 workers would fight over 16 cores."""
    cv2.setNumThreads(1)


def to_device(batch, device: str):
    """``batch`` (a tensor, or a tuple or list of them) on ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, (tuple, list)):
        return type(batch)(to_device(item, device) for item in batch)
    return batch


def learning_rate(base: float, progress: float, step: int, warmup: int) -> float:
    """Cosine from ``base`` down to 2% of it over ``progress`` 0..1, after a linear warm-up."""
    return base * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * progress))) * min(1.0, step / warmup)


def fit(model: torch.nn.Module, batches: Iterable, loss_of: Callable[[object], torch.Tensor], cfg,
        save: Callable[[int, dict], None], log: Callable[[str], None] = print,
        warmup: int = 50, clip: float | None = None) -> list[float]:
    """Optimise ``model`` on ``cfg.device`` on ``batches`` until ``cfg.minutes`` or ``cfg.max_steps``
    run out.

    ``cfg`` is a ``TrainConfig``; each batch is moved to its device before ``loss_of`` sees it, and
    ``save(step, metrics)`` writes a checkpoint. Returns the loss of every step.
    """
    model.to(cfg.device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
    budget = cfg.minutes * 60
    start = last_checkpoint = time.time()
    losses: list[float] = []
    running = None
    for step, batch in enumerate(batches, 1):
        elapsed = time.time() - start
        progress = min(1.0, max(elapsed / budget, step / cfg.max_steps))
        for group in opt.param_groups:
            group["lr"] = learning_rate(cfg.lr, progress, step, warmup)
        loss = loss_of(to_device(batch, cfg.device))
        opt.zero_grad()
        loss.backward()
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        losses.append(loss.item())
        running = losses[-1] if running is None else 0.98 * running + 0.02 * losses[-1]
        if step % 25 == 0:
            log(f"step {step} t={elapsed / 60:.1f}m loss={running:.4f} lr={opt.param_groups[0]['lr']:.2e}")
        if cfg.out and time.time() - last_checkpoint > cfg.checkpoint_minutes * 60:
            save(step, {"loss": running})
            last_checkpoint = time.time()
        if progress >= 1.0:
            break
    if cfg.out:
        save(len(losses), {"loss": running, "minutes": (time.time() - start) / 60})
    return losses


def save_weights(model: torch.nn.Module, out: Path, name: str, meta: dict) -> None:
    """``name``.pt (fp16 weights, on the CPU wherever they were trained, and ``meta``; replaced in one
    step, so a reader never sees half a file) and ``name``.json (``meta`` alone, readable without
    PyTorch)."""
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().half() if v.is_floating_point() else v.detach().cpu()
             for k, v in model.state_dict().items()}
    tmp = out / f"{name}.pt.tmp"
    torch.save({"state_dict": state, "meta": meta}, tmp)
    tmp.replace(out / f"{name}.pt")
    (out / f"{name}.json").write_text(json.dumps(meta, indent=2))


def _truthy(text: str) -> bool:
    return text.lower() in ("1", "true", "yes")


def config_from_command_line(config_class, argv=None, description: str | None = None):
    """A ``--field-name`` option for every field of the dataclass ``config_class``."""
    parser = argparse.ArgumentParser(description=description)
    for name, value in asdict(config_class()).items():
        kind = _truthy if type(value) is bool else type(value)
        parser.add_argument(f"--{name.replace('_', '-')}", type=kind, default=value)
    return config_class(**vars(parser.parse_args(argv)))
