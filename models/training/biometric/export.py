"""Export a trained generator for the gateway: ``prichexy_mu{MU}.onnx`` and its JSON.

    python -m models.training.biometric.export --mu 0.01 [--work var/biometric] [--out models/weights]

The ONNX file holds ``FlowGenerator`` (U-Net and Gaussian smoothing; mu and the sampling stay
outside, in ``models.biometric.deform``), with any batch and any image size divisible by 16. Its
weights are stored as fp16 and cast to fp32 by a Cast node each, which ONNX Runtime folds when
the session starts: a 32-feature U-Net is 7.8 M parameters, 15.5 MB this way instead of 31 MB.
The JSON records the version, mu, input size, what it was trained on, and the export's SHA-256,
which the runtime checks.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

from models.biometric.networks import PriCheXyNet
from models.biometric.runtime import WEIGHTS, weights_name
from models.training.biometric.common import WORK, load_checkpoint, read_meta

VERSION = "prichexy-1.0"


def to_fp16_storage(model_bytes: bytes) -> bytes:
    """The same graph with every large float initializer stored as fp16 behind a Cast to fp32."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load_from_string(model_bytes)
    graph = model.graph
    casts, keep = [], []
    for init in graph.initializer:
        array = numpy_helper.to_array(init)
        if init.data_type != TensorProto.FLOAT or array.size < 64:
            keep.append(init)
            continue
        half = numpy_helper.from_array(array.astype(np.float16), init.name + "_fp16")
        keep.append(half)
        casts.append(helper.make_node("Cast", [half.name], [init.name], to=TensorProto.FLOAT))
    del graph.initializer[:]
    graph.initializer.extend(keep)
    nodes = casts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.checker.check_model(model)
    return model.SerializeToString()


def export(model: PriCheXyNet, size: int) -> bytes:
    generator = model.generator.eval()
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(generator, torch.rand(1, 1, size, size), buf, input_names=["x"], output_names=["y"],
                          opset_version=17, dynamic_axes={"x": {0: "n", 2: "h", 3: "w"}, "y": {0: "n", 2: "h", 3: "w"}},
                          dynamo=False)
    return to_fp16_storage(buf.getvalue())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mu", type=float, default=0.01)
    parser.add_argument("--work", default=str(WORK))
    parser.add_argument("--out", default=str(WEIGHTS))
    args = parser.parse_args(argv)
    source = Path(args.work) / f"{weights_name(args.mu)}.pt"
    meta = read_meta(source)
    model = load_checkpoint(PriCheXyNet(args.mu, int(meta.get("features", 32))), source)
    onnx_bytes = export(model, int(meta["size"]))
    out = Path(args.out) / f"{weights_name(args.mu)}.onnx"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(onnx_bytes)
    record = {"version": f"{VERSION}-mu{args.mu!r}", "mu": args.mu, "size": int(meta["size"]),
              "features": int(meta.get("features", 32)), "onnx_sha256": hashlib.sha256(onnx_bytes).hexdigest(),
              "source_sha256": hashlib.sha256(source.read_bytes()).hexdigest(),
              "trained": {k: meta[k] for k in ("epochs", "seed", "best", "minutes") if k in meta}}
    out.with_suffix(".json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    print(f"wrote {out} ({len(onnx_bytes) / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
