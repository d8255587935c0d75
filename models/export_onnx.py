"""Export the shipped detector to ONNX for the gateway's CPU workers.

    python -m models.export_onnx [--weights models/weights]

Run it after every change to ``detector.pt``: the gateway uses ``detector.onnx`` only while the
SHA-256 recorded in it matches ``detector.pt`` (and runs the network with PyTorch otherwise).
``tests/models/test_onnx_export.py`` checks that the shipped pair match and agree.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from models.runtime import ONNX_FILE, WEIGHTS_FILE, export_onnx, sha256_of


def export(weights_dir: Path) -> Path:
    from models.inference import fuse_batchnorm, load_detector_module

    module = fuse_batchnorm(load_detector_module(weights_dir).eval())
    target = weights_dir / ONNX_FILE
    tmp = target.with_suffix(".onnx.tmp")
    tmp.write_bytes(export_onnx(module, sha256_of(weights_dir / WEIGHTS_FILE)))
    tmp.replace(target)
    return target


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", type=Path, default=Path(__file__).resolve().parent / "weights")
    args = parser.parse_args(argv)
    print(f"wrote {export(args.weights)}")


if __name__ == "__main__":
    main()
