"""The biometric stage: its CPU cost on full-size radiographs, and the re-identification attack
that shows what it buys.

    .venv/bin/python bench/biometric.py [--cxr ../shared/cxr] [--attackers train] [--rounds 5]

1. **Cost.** A generated 2048 x 2048 chest DX (12 bits) through ``BiometricStage`` as the gateway
   runs it (decode, render, generator under ONNX Runtime, deformation, write), on one core (ONNX
   Runtime and OpenCV limited to one thread), for PriCheXy-Net at the configured mu and for DP-Pix;
   medians of ``--rounds`` after one warm-up, and the same instance through the stage with nothing
   to do (a lateral view) as the floor. The issue's budget is 1 s.
2. **Attack.** With ``--cxr``, ``models.training.biometric.evaluate`` on the held-out patients of
   the split: re-identification AUC of the original verifier and of one re-trained on anonymized
   images, classification AUC, SSIM, seconds per image (``--attackers train`` trains the missing
   attackers first; see that module).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import cv2

from gateway.biometric.config import BiometricConfig
from gateway.biometric.stage import BiometricStage
from gateway.pipeline.stage import InstanceContext
from tests.biometric.synth import make_chest


def _median_seconds(stage: BiometricStage, ds, rounds: int) -> float:
    stage(copy.deepcopy(ds), InstanceContext(original=ds))  # warm-up: loads the generator
    times = []
    for _ in range(rounds):
        work = copy.deepcopy(ds)
        start = time.perf_counter()
        stage(work, InstanceContext(original=ds))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def cost(size: int, rounds: int, mu: float, weights: Path | None) -> list[tuple[str, float]]:
    cv2.setNumThreads(1)
    frontal = make_chest(size, size, seed=1)
    lateral = make_chest(size, size, seed=1, view="LL")
    base = {"profiles": ["bench"], "cpu_threads": 1, "mu": mu, "weights_dir": weights}
    rows = [
        (f"PriCheXy-Net, mu = {mu}", _median_seconds(BiometricStage(BiometricConfig(**base), b"k" * 32), frontal, rounds)),
        ("DP-Pix, b = 8, m = 1, eps = 0.1 (at 256 px)",
         _median_seconds(BiometricStage(BiometricConfig(**base, method="dp_pix"), b"k" * 32), frontal, rounds)),
        ("a lateral view (passes unchanged)",
         _median_seconds(BiometricStage(BiometricConfig(**base), b"k" * 32), lateral, rounds)),
    ]
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cxr", default=None, help="../shared/cxr: also run the attack (models.training.biometric.evaluate)")
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--mu", type=float, default=0.01)
    parser.add_argument("--weights", type=Path, default=None, help="default: models/weights")
    parser.add_argument("--attackers", choices=("load", "train"), default="load")
    parser.add_argument("--work", default="var/biometric")
    args = parser.parse_args(argv)

    print(f"## Cost per {args.size} x {args.size} radiograph, one core (median of {args.rounds})\n")
    print("| stage run | seconds |\n|---|---|")
    for name, seconds in cost(args.size, args.rounds, args.mu, args.weights):
        print(f"| {name} | {seconds:.3f} |")
    if args.cxr:
        from models.training.biometric.evaluate import main as evaluate

        print("\n## Re-identification attack and utility (held-out patients)\n", flush=True)
        return evaluate(["--cxr", args.cxr, "--work", args.work, "--attackers", args.attackers])
    return 0


if __name__ == "__main__":
    sys.exit(main())
