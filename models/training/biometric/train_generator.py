"""Train PriCheXy-Net's flow-field generator (or the Privacy-Net baseline) against the two fixed
networks.

    python -m models.training.biometric.train_generator --cxr ../shared/cxr --mu 0.01
    python -m models.training.biometric.train_generator --cxr ../shared/cxr --method privacynet

Needs ``verifier.pt`` and ``classifier.pt`` in ``--work`` (``train_verifier``, ``train_classifier``), else
the shipped ``models/weights/biometric_verifier.pt`` and ``biometric_classifier.pt``.
As in Packhäuser et al. 2023 (section 2.2 and the published training loop), for each pair
(x1, x2, same patient or not) of an epoch's balanced pairs:

    x1' = A(x1)                                       (the deformed, or Privacy-Net's, image)
    L_ver = -log(1 - sigma(S(x1', x2)))               pushes the verifier S to "different patient"
    L_ac  = BCE(C(x1'), sigma(C(x1)))                 keeps the classifier C's outputs
    L = w_ac * L_ac + w_ver * L_ver                   (both weights 1 in the paper)

then the verifier takes one step of its own on (x1', x2, label), so the generator keeps meeting
a verifier that has seen its deformations. Differences from the paper, all stated in the model
card: L_ac's target is the classifier's output on the original image rather than the NIH labels
(the Hannover images have none, and the issue asks that outputs be kept); the classifier is not
fine-tuned alongside; the generator's "pre-training to the identity" is a short fit of its raw
flow to zero (Privacy-Net's, which outputs the image, is a fit of its output to its input, as
published); the networks see 64 px images, not 256 px. The epoch with the lowest validation L is
kept.
"""

from __future__ import annotations

import copy
import math
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from models.biometric.networks import PriCheXyNet, PrivacyNet
from models.training.biometric.common import (
    Log,
    base_parser,
    fixed_network,
    load_checkpoint,
    save_checkpoint,
    seed_all,
    to_tensor,
)
from models.training.biometric.data import (
    CxrSet,
    epoch_pairs,
    evaluation_pairs,
    load_split,
)
from models.training.biometric.nets import AbnormalityClassifier, SiameseVerifier


def anonymizer_network(method: str, mu: float, features: int) -> nn.Module:
    return PriCheXyNet(mu, features) if method == "prichexy" else PrivacyNet()


def pretrain(model: nn.Module, x: torch.Tensor, args, log: Log) -> None:
    """Start from the identity: the raw flow fitted to zero, or Privacy-Net's output to its input."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    for epoch in range(args.pretrain_epochs):
        total, steps = 0.0, 0
        for i in range(0, len(x), args.batch):
            xb = x[i:i + args.batch]
            if isinstance(model, PriCheXyNet):
                loss = model.generator.unet(xb).pow(2).mean()
            else:
                loss = F.mse_loss(model(xb), xb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total, steps = total + loss.item(), steps + 1
        log(f"pre-training {epoch + 1}: {total / steps:.5f}")


def losses(model: nn.Module, verifier: SiameseVerifier, classifier: AbnormalityClassifier,
           x1: torch.Tensor, x2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(anonymized x1, L_ac, L_ver) with gradients into ``model`` only."""
    fake = model(x1)
    with torch.no_grad():
        target = torch.sigmoid(classifier(x1))
    ac = F.binary_cross_entropy_with_logits(classifier(fake), target)
    same = torch.sigmoid(verifier(fake, x2))
    ver = -torch.log((1 - same).clamp(min=1e-6)).mean()
    return fake, ac, ver


@torch.no_grad()
def validate(model, verifier, classifier, val: CxrSet, pairs: np.ndarray, args) -> tuple[float, float]:
    model.eval()
    x = to_tensor(val.images)
    acs, vers = [], []
    for i in range(0, len(pairs), 128):
        p = pairs[i:i + 128]
        _, ac, ver = losses(model, verifier, classifier, x[p[:, 0]], x[p[:, 1]])
        acs.append(ac.item())
        vers.append(ver.item())
    return float(np.mean(acs)), float(np.mean(vers))


@torch.no_grad()
def _change(model: nn.Module, val: CxrSet) -> str:
    """How much the anonymizer changes the validation images (mean absolute difference), and for
    PriCheXy-Net the mean |flow| (1 = the largest move mu allows)."""
    model.eval()
    x = to_tensor(val.images)
    text = f"mean |change| {(model(x) - x).abs().mean().item():.4f}"
    if isinstance(model, PriCheXyNet):
        text += f", mean |flow| {model.generator(x).abs().mean().item():.3f}"
    return text


def _step_verifier(verifier: SiameseVerifier, opt: torch.optim.Optimizer, fake: torch.Tensor,
                   x2: torch.Tensor, same: torch.Tensor) -> None:
    verifier.train()
    loss = F.binary_cross_entropy_with_logits(verifier(fake.detach(), x2), same)
    opt.zero_grad()
    loss.backward()
    opt.step()
    verifier.eval()


def train_generator(model: nn.Module, train: CxrSet, val: CxrSet, verifier: SiameseVerifier,
                    classifier: AbnormalityClassifier, args, log: Log) -> tuple[nn.Module, dict]:
    rng = seed_all(args.seed)
    x = to_tensor(train.images)
    pretrain(model, x, args, log)
    for p in classifier.parameters():
        p.requires_grad_(False)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    opt_v = torch.optim.Adam(verifier.parameters(), lr=args.lr * 0.1)
    val_pairs = evaluation_pairs(val, seed=args.seed)
    best, best_loss, best_row = copy.deepcopy(model.state_dict()), math.inf, {}
    for epoch in range(args.epochs):
        model.train()
        pairs = epoch_pairs(train, rng)
        pairs = pairs[rng.permutation(len(pairs))]
        sums = np.zeros(2)
        steps = math.ceil(len(pairs) / args.batch)
        for step in range(steps):
            p = pairs[step * args.batch:(step + 1) * args.batch]
            x1, x2 = x[p[:, 0]], x[p[:, 1]]
            fake, ac, ver = losses(model, verifier, classifier, x1, x2)
            loss = args.ac_weight * ac + args.ver_weight * ver
            opt.zero_grad()
            loss.backward()
            opt.step()
            if args.update_verifier:
                _step_verifier(verifier, opt_v, fake, x2, torch.from_numpy(p[:, 2]).float())
            sums += (ac.item(), ver.item())
        v_ac, v_ver = validate(model, verifier, classifier, val, val_pairs, args)
        total = args.ac_weight * v_ac + args.ver_weight * v_ver
        log(f"epoch {epoch + 1}: train ac {sums[0] / steps:.4f} ver {sums[1] / steps:.4f}; "
            f"validation ac {v_ac:.4f} ver {v_ver:.4f} total {total:.4f}; {_change(model, val)}")
        if total < best_loss:
            best, best_loss = copy.deepcopy(model.state_dict()), total
            best_row = {"epoch": epoch + 1, "validation_ac": round(v_ac, 4), "validation_ver": round(v_ver, 4)}
        if log.minutes > args.minutes:
            log("time budget spent")
            break
    model.load_state_dict(best)
    return model.eval(), best_row


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--method", choices=("prichexy", "privacynet"), default="prichexy")
    parser.add_argument("--mu", type=float, default=0.01)
    parser.add_argument("--features", type=int, default=32, help="the U-Net's first width (32 as published)")
    parser.add_argument("--pretrain-epochs", type=int, default=2)
    parser.add_argument("--ac-weight", type=float, default=1.0)
    parser.add_argument("--ver-weight", type=float, default=1.0)
    parser.add_argument("--no-update-verifier", dest="update_verifier", action="store_false")
    parser.set_defaults(epochs=12, lr=1e-4)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    log = Log()
    work = Path(args.work)
    verifier = load_checkpoint(SiameseVerifier(), fixed_network(work, "verifier"))
    classifier = load_checkpoint(AbnormalityClassifier(), fixed_network(work, "classifier"))
    train, val = load_split(args.cxr, "train", args.size), load_split(args.cxr, "val", args.size)
    model = anonymizer_network(args.method, args.mu, args.features)
    log(f"{args.method} (mu {args.mu}) on {len(train)} training images at {args.size} px")
    model, best = train_generator(model, train, val, verifier, classifier, args, log)
    name = f"prichexy_mu{args.mu!r}" if args.method == "prichexy" else "privacynet"
    path = work / f"{name}.pt"
    save_checkpoint(model, path, {"network": type(model).__name__, "method": args.method, "mu": args.mu,
                                  "features": args.features, "size": args.size, "epochs": args.epochs, "lr": args.lr,
                                  "seed": args.seed, "best": best, "minutes": round(log.minutes, 1),
                                  "log": log.lines[-5:]})
    log(f"wrote {path} ({best})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
