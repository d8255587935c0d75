"""Train the Siamese verifier: are two chest radiographs one patient?

    python -m models.training.biometric.train_verifier --cxr ../shared/cxr
    python -m models.training.biometric.train_verifier --cxr ../shared/cxr --anonymizer prichexy:0.01

Without ``--anonymizer`` it is the verifier PriCheXy-Net is trained against (and the "original"
attacker of the evaluation). With one, it is the strong attacker of the paper's evaluation: the
same network trained afresh on images that were all anonymized (both of each pair), then asked to
link an anonymized image to an original one.

Each batch holds 16 patients of one source with two images each; every pair in the batch is a
training pair (binary cross-entropy, positives weighted up to the negatives), so one forward pass
per image serves some 500 pairs: with a few hundred patients and no pretrained backbone, drawing
one pair per two forward passes (the paper's pair list) learned too slowly on two CPU cores.
Augmentation (small affine moves, exposure), AdamW, a cosine learning rate; the epoch with the best
validation AUC is kept.
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
from models.training.biometric.data import (
    CxrSet,
    evaluation_pairs,
    load_split,
    patient_batches,
)
from models.training.biometric.nets import SiameseVerifier


@torch.no_grad()
def embed(model: SiameseVerifier, images: np.ndarray, batch: int = 256) -> torch.Tensor:
    model.eval()
    x = to_tensor(images)
    return torch.cat([model.embed(x[i:i + batch]) for i in range(0, len(x), batch)])


@torch.no_grad()
def pair_scores(model: SiameseVerifier, first: np.ndarray, second: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """Probability "same patient" for each pair (i, j, _): image i of ``first`` against image j of
    ``second`` (an anonymized set against the originals, in the attack)."""
    ea = embed(model, first)
    eb = ea if second is first else embed(model, second)
    logits = model.fc_end(torch.abs(ea[pairs[:, 0]] - eb[pairs[:, 1]])).squeeze(1)
    return torch.sigmoid(logits).numpy()


def verification_auc(model: SiameseVerifier, first: np.ndarray, second: np.ndarray, pairs: np.ndarray) -> float:
    return auc(pairs[:, 2], pair_scores(model, first, second, pairs))


def _batch_loss(model: SiameseVerifier, images: torch.Tensor, patients: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy over every pair of the batch, positives weighted up to the negatives."""
    emb = model.embed(images)
    i, j = torch.triu_indices(len(images), len(images), 1)
    logits = model.fc_end(torch.abs(emb[i] - emb[j])).squeeze(1)
    same = (patients[i] == patients[j]).float()
    pos_weight = (len(same) - same.sum()) / same.sum().clamp(min=1)
    return F.binary_cross_entropy_with_logits(logits, same, pos_weight=pos_weight)


def train_verifier(train: CxrSet, val: CxrSet, args, log: Log) -> tuple[SiameseVerifier, float]:
    """The verifier with the best validation AUC over ``args.epochs`` (or ``args.minutes``)."""
    rng = seed_all(args.seed)
    model = SiameseVerifier()
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    x = to_tensor(train.images)
    val_pairs = evaluation_pairs(val, seed=args.seed)
    best, best_auc = copy.deepcopy(model.state_dict()), -1.0
    patient_ids = torch.from_numpy(np.unique(train.patients, return_inverse=True)[1])
    for epoch in range(args.epochs):
        model.train()
        batches = patient_batches(train, rng, args.patients, args.per_patient, args.rounds)
        total = 0.0
        for step, idx in enumerate(batches):
            for group in opt.param_groups:
                group["lr"] = args.lr * 0.5 * (1 + math.cos(math.pi * (epoch + step / len(batches)) / args.epochs))
            loss = _batch_loss(model, augment(x[idx]), patient_ids[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item()
        steps = max(1, len(batches))
        val_auc = verification_auc(model, val.images, val.images, val_pairs)
        log(f"epoch {epoch + 1}: loss {total / steps:.4f}, validation AUC {val_auc:.4f}")
        if val_auc > best_auc:
            best, best_auc = copy.deepcopy(model.state_dict()), val_auc
        if log.minutes > args.minutes:
            log("time budget spent")
            break
    model.load_state_dict(best)
    return model.eval(), best_auc


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--anonymizer", default="none",
                        help="train on anonymized images: none, prichexy:MU, dppix, privacynet, blur:SIGMA")
    parser.add_argument("--name", default=None, help="file name in --work (default from --anonymizer)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    log = Log()
    train, val = load_split(args.cxr, "train", args.size), load_split(args.cxr, "val", args.size)
    if args.anonymizer != "none":
        from models.training.biometric.anonymizers import make_anonymizer

        anonymize = make_anonymizer(args.anonymizer, Path(args.work))
        train.images, val.images = anonymize(train.images, "train"), anonymize(val.images, "val")
    log(f"{len(train)} training and {len(val)} validation images at {args.size} px; anonymizer {args.anonymizer}")
    model, best = train_verifier(train, val, args, log)
    name = args.name or ("verifier" if args.anonymizer == "none" else f"attacker_{args.anonymizer.replace(':', '_')}")
    path = Path(args.work) / f"{name}.pt"
    save_checkpoint(model, path, {"network": "SiameseVerifier", "size": args.size, "anonymizer": args.anonymizer,
                                  "validation_auc": round(best, 4), "epochs": args.epochs, "lr": args.lr, "seed": args.seed,
                                  "minutes": round(log.minutes, 1), "log": log.lines[-5:]})
    log(f"wrote {path} (validation AUC {best:.4f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
