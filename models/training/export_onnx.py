"""Export the shipped networks to ONNX for the gateway's CPU workers.

    python -m models.training.export_onnx [--weights models/weights]

Run it after every change to the ``.pt`` weights: the gateway uses ``NAME.onnx`` only while the
SHA-256 recorded in it matches ``NAME.pt`` (and runs the network with PyTorch otherwise).
``tests/models/test_onnx_export.py`` checks that the shipped pairs match and agree.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from models.inference import DEFAULT_WEIGHTS
from models.runtime import export_onnx, sha256_of

NETWORKS = ("detector", "detector_eqview", "recognizer", "verifier")


def export(weights_dir: Path, name: str) -> Path:
    from models.checkpoints import fuse_batchnorm, load_detector_module, load_recognizer_module, load_verifier_module

    kind = "detector" if name.startswith("detector") else name  # detector_eqview is a detector
    loaders = {"detector": lambda: load_detector_module(weights_dir, name),
               "recognizer": lambda: load_recognizer_module(weights_dir),
               "verifier": lambda: load_verifier_module(weights_dir, name)}
    module = fuse_batchnorm(loaders[kind]().eval())
    target = weights_dir / f"{name}.onnx"
    tmp = target.with_suffix(".onnx.tmp")
    tmp.write_bytes(export_onnx(module, sha256_of(weights_dir / f"{name}.pt"), kind=kind))
    tmp.replace(target)
    return target


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS)
    args = parser.parse_args(argv)
    for name in NETWORKS:
        if (args.weights / f"{name}.pt").exists():
            print(f"wrote {export(args.weights, name)}")


if __name__ == "__main__":
    main()
