"""Train the abnormality classifier: the 14 ChestX-ray14 labels, on the NIH images of the split.

    python -m models.training.biometric.train_classifier --cxr ../shared/cxr

Only images with NIH labels train it (NIH1000 and the 256 px NIH subset; the Hannover images have
none). Binary cross-entropy over the 14 labels, AdamW, cosine learning rate, light augmentation;
the epoch with the lowest validation loss is kept (the validation split's 69 labelled images hold
too few positives of most labels for their AUCs to choose an epoch). The utility measure of the evaluation is this network's AUC on anonymized test
images (:func:`label_aucs`).
"""

from __future__ import annotations

import copy
import math
import sys
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from models.training.biometric.common import (
    Log,
    auc,
    augment,
    base_parser,
    save_checkpoint,
    seed_all,
    to_tensor,
)
from models.training.biometric.data import CxrSet, load_split
from models.training.biometric.nets import LABELS, AbnormalityClassifier

#: A label counts in a mean AUC only where the evaluated images hold at least this many positives.
MIN_POSITIVES = 10


@torch.no_grad()
def predict(model: AbnormalityClassifier, images: np.ndarray, batch: int = 256) -> np.ndarray:
    """Probabilities (N, 14)."""
    model.eval()
    x = to_tensor(images)
    return torch.cat([torch.sigmoid(model(x[i:i + batch])) for i in range(0, len(x), batch)]).numpy()


def label_aucs(labels: np.ndarray, probs: np.ndarray, min_positives: int = MIN_POSITIVES) -> dict[str, float]:
    """AUC per label with enough positives, their mean (``mean``), and "any finding" against
    "No Finding" scored by the largest probability (``abnormal``)."""
    out = {LABELS[k]: auc(labels[:, k], probs[:, k]) for k in range(len(LABELS))
           if labels[:, k].sum() >= min_positives}
    out["mean"] = float(np.mean(list(out.values()))) if out else float("nan")
    out["abnormal"] = auc(labels.max(1), probs.max(1))
    return out


def train_classifier(train: CxrSet, val: CxrSet, args, log: Log) -> tuple[AbnormalityClassifier, float]:
    rng = seed_all(args.seed)
    model = AbnormalityClassifier()
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    x, y = to_tensor(train.images), torch.from_numpy(train.labels)
    # Positives are rare: weigh each label's positives up to the negatives, at most 10 to 1.
    pos = y.mean(0).clamp(min=1e-3)
    weight = ((1 - pos) / pos).clamp(max=10.0)
    best, best_auc = copy.deepcopy(model.state_dict()), -math.inf
    steps = math.ceil(len(x) / args.batch)
    for epoch in range(args.epochs):
        model.train()
        order = rng.permutation(len(x))
        total = 0.0
        for step in range(steps):
            for group in opt.param_groups:
                group["lr"] = args.lr * 0.5 * (1 + math.cos(math.pi * (epoch * steps + step) / (args.epochs * steps)))
            idx = order[step * args.batch:(step + 1) * args.batch]
            loss = F.binary_cross_entropy_with_logits(model(augment(x[idx])), y[idx], pos_weight=weight)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item()
        probs = predict(model, val.images)
        scores = label_aucs(val.labels, probs, min_positives=3)
        val_loss = F.binary_cross_entropy(torch.from_numpy(probs).clamp(1e-6, 1 - 1e-6), torch.from_numpy(val.labels)).item()
        log(f"epoch {epoch + 1}: loss {total / steps:.4f}, validation loss {val_loss:.4f}, mean AUC {scores['mean']:.4f}, "
            f"abnormal {scores['abnormal']:.4f}")
        if -val_loss > best_auc:
            best, best_auc = copy.deepcopy(model.state_dict()), -val_loss
        if log.minutes > args.minutes:
            log("time budget spent")
            break
    model.load_state_dict(best)
    return model.eval(), best_auc


def labelled(data: CxrSet) -> CxrSet:
    return data.subset(np.flatnonzero(data.labelled))


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--name", default="classifier", help="file name in --work")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    log = Log()
    train = labelled(load_split(args.cxr, "train", args.size))
    val = labelled(load_split(args.cxr, "val", args.size))
    log(f"{len(train)} training and {len(val)} validation images with NIH labels at {args.size} px")
    model, best = train_classifier(train, val, args, log)
    path = Path(args.work) / f"{args.name}.pt"
    save_checkpoint(model, path, {"network": "AbnormalityClassifier", "size": args.size, "labels": list(LABELS),
                                  "validation_loss": round(-best, 4), "epochs": args.epochs, "lr": args.lr, "seed": args.seed,
                                  "minutes": round(log.minutes, 1), "log": log.lines[-5:]})
    log(f"wrote {path} (validation loss {-best:.4f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
