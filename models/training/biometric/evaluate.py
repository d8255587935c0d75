"""The re-identification attack and the utility measure, on the held-out patients of the split.

    python -m models.training.biometric.evaluate --cxr ../shared/cxr [--attackers train] [--pairs-per-patient 45]

For each anonymization (``anonymizers``) the test images are anonymized, and:

- **re-identification AUC, original verifier**: the verifier PriCheXy-Net was trained against
  scores pairs (anonymized image, *original* image of the same or of another patient): the
  linkage attack of the paper, an anonymized image against an identified archive;
- **re-identification AUC, re-trained attacker**: the same, by verifiers of the same kind trained
  afresh on anonymized training images (``attacker_<spec>.pt``, and ``_seed<n>`` for further
  seeds; ``--attackers train`` trains the missing ones): the mean over ``--attacker-seeds`` and its
  standard deviation, since one attacker's AUC moves by several points with its seed alone. The
  "original images" row's attackers are trained the same way on the images as they are, so that
  row is the control of this column;
- **its difference to the original images**, with a 95 % interval from drawing the test patients
  and the attackers' seeds again with replacement (``patient_bootstrap``): the test set's sampling
  noise (87 patients, whose pairs are far from independent) and the attackers' training noise;
- **classification AUC**: the abnormality classifier C (trained on original images, the one the
  generator was trained against) and C', trained apart with another seed (``classifier_eval.pt``),
  on anonymized test images: the mean AUC over the NIH labels with at least 10 positives among
  them, and "any finding" against "No Finding". C' is the fairer utility measure: the generator
  was optimised to keep C's outputs, which an image-destroying anonymizer can do without keeping
  the image (Privacy-Net does);
- **SSIM** to the original, and the seconds per image the anonymization took here (64 px, CPU,
  in batches; the gateway's cost on full-size radiographs is measured by ``bench/biometric.py``).

Pairs are drawn within a source (NIH or Hannover): every positive pair of the test patients and
as many negatives; AUCs are also given per source. The Gaussian blur row's sigma is chosen so
that its mean SSIM matches that of the PriCheXy-Net row at ``--blur-match`` mu.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from models.biometric.quality import ssim
from models.training.biometric.anonymizers import make_anonymizer
from models.training.biometric.common import (
    WORK,
    Log,
    auc,
    fixed_network,
    load_checkpoint,
    save_checkpoint,
)
from models.training.biometric.data import CxrSet, evaluation_pairs, load_split
from models.training.biometric.figure import trade_off_svg
from models.training.biometric.nets import AbnormalityClassifier, SiameseVerifier
from models.training.biometric.train_classifier import label_aucs, predict
from models.training.biometric.train_verifier import pair_scores, train_verifier

MUS = (0.001, 0.005, 0.01)
#: Strengths evaluated too when a generator for them was trained (not offered by the gateway).
EXTRA_MUS = (0.02, 0.05)


@dataclass
class Row:
    name: str
    spec: str
    reid_original: dict[str, float] = field(default_factory=dict)
    reid_retrained: dict[str, float] = field(default_factory=dict)  # the mean over the attackers' seeds
    reid_retrained_runs: list[dict[str, float]] = field(default_factory=list)  # one per seed
    retrained_delta: float = float("nan")  # reid_retrained["all"] minus that of the original images
    retrained_delta_ci: tuple[float, float] | None = None  # its 95 % patient-bootstrap interval
    retrained_scores: list[np.ndarray] = field(default_factory=list, repr=False)  # per seed; not written out
    classification: dict[str, float] = field(default_factory=dict)  # C, the classifier trained against
    classification_eval: dict[str, float] = field(default_factory=dict)  # C', trained apart (another seed)
    ssim: float = float("nan")
    seconds: float = float("nan")


def mean_ssim(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean([ssim(x, y) for x, y in zip(a, b, strict=True)]))


def reid_aucs(model: SiameseVerifier, anonymized: np.ndarray, test: CxrSet, pairs: np.ndarray) -> dict[str, float]:
    """AUC over all pairs and per source, anonymized first image against original second."""
    return aucs_by_source(pair_scores(model, anonymized, test.images, pairs), test, pairs)


def aucs_by_source(scores: np.ndarray, test: CxrSet, pairs: np.ndarray) -> dict[str, float]:
    out = {"all": auc(pairs[:, 2], scores)}
    for prefix, name in (("nih", "nih"), ("hannover", "mhh")):
        keep = np.array([test.sources[a].startswith(prefix) for a in pairs[:, 0]])
        out[name] = auc(pairs[keep, 2], scores[keep])
    return out


def cap_positives(pairs: np.ndarray, patients: list[str], cap: int, seed: int = 0) -> np.ndarray:
    """At most ``cap`` positive pairs per patient, each kept with its negative (``evaluation_pairs``
    puts the negatives after the positives, in the same order, sharing their first image). Every
    unordered pair of a patient's images is a positive, so a patient with n images weighs
    n(n - 1)/2: in the shared test split one NIH patient has 66 images and 2,145 of the 2,717
    positive pairs, and the AUC over all pairs is mostly about him."""
    n = len(pairs) // 2
    assert pairs[:n, 2].all() and not pairs[n:, 2].any()
    rng = np.random.default_rng(seed)
    owner = np.array([patients[a] for a in pairs[:n, 0]])
    keep = []
    for patient in np.unique(owner):
        idx = np.flatnonzero(owner == patient)
        keep.extend(idx if len(idx) <= cap else rng.choice(idx, cap, replace=False))
    keep = np.sort(np.asarray(keep, dtype=np.int64))
    return np.concatenate([pairs[keep], pairs[n + keep]])


def patient_bootstrap(pairs: np.ndarray, patients: list[str], scores: list[np.ndarray], reference: list[np.ndarray],
                      rounds: int = 1000, seed: int = 0) -> tuple[float, float]:
    """95 % interval of (mean AUC over ``scores``' seeds) minus (the same of ``reference``), both
    scoring ``pairs``, when the test patients are drawn again with replacement, and each side's
    attackers (seeds) too. A pair goes with the patient of its first image, so each draw keeps
    every pair of a drawn patient together: pairs of one patient share his images and are not
    independent evidence. Drawing the seeds as well puts the attackers' training noise into the
    interval, so that it answers "beyond both kinds of noise?"."""
    owner = np.unique([patients[a] for a in pairs[:, 0]], return_inverse=True)[1]
    groups = [np.flatnonzero(owner == k) for k in range(owner.max() + 1)]
    rng = np.random.default_rng(seed)
    deltas = []
    for _ in range(rounds):
        take = np.concatenate([groups[k] for k in rng.integers(0, len(groups), len(groups))])
        y = pairs[take, 2]
        ours, theirs = (rng.integers(0, len(runs), len(runs)) for runs in (scores, reference))
        deltas.append(np.mean([auc(y, scores[k][take]) for k in ours])
                      - np.mean([auc(y, reference[k][take]) for k in theirs]))
    low, high = np.nanpercentile(deltas, [2.5, 97.5])
    return float(low), float(high)


def blur_sigma_for(target: float, images: np.ndarray, work: Path) -> float:
    """The Gaussian blur's sigma whose mean SSIM on ``images`` is ``target`` (bisection, 0.01 px)."""
    lo, hi = 0.05, 6.0
    for _ in range(18):
        mid = (lo + hi) / 2
        if mean_ssim(make_anonymizer(f"blur:{mid}", work)(images, "test"), images) > target:
            lo = mid
        else:
            hi = mid
    return round((lo + hi) / 2, 2)


def attacker_path(spec: str, seed: int, work: Path) -> Path:
    name = f"attacker_{spec.replace(':', '_')}"
    return work / (f"{name}.pt" if seed == 1 else f"{name}_seed{seed}.pt")


def attacker(spec: str, seed: int, work: Path, args, log: Log) -> SiameseVerifier | None:
    """The verifier re-trained (with ``seed``) on ``spec``-anonymized images: loaded, trained now
    (``--attackers train``), or None."""
    path = attacker_path(spec, seed, work)
    if path.exists():
        return load_checkpoint(SiameseVerifier(), path)
    if args.attackers != "train":
        return None
    anonymize = make_anonymizer(spec, work)
    train, val = load_split(args.cxr, "train", args.size), load_split(args.cxr, "val", args.size)
    train.images, val.images = anonymize(train.images, "train"), anonymize(val.images, "val")
    log(f"training the attacker for {spec}, seed {seed}")
    model, best = train_verifier(train, val, argparse.Namespace(**{**vars(args), "seed": seed}), log)
    save_checkpoint(model, path, {"network": "SiameseVerifier", "anonymizer": spec, "validation_auc": round(best, 4),
                                  "epochs": args.epochs, "seed": seed, "size": args.size})
    return model


def _mean_runs(runs: list[dict[str, float]]) -> dict[str, float]:
    out = {key: float(np.mean([r[key] for r in runs])) for key in runs[0]}
    out["sd"] = float(np.std([r["all"] for r in runs], ddof=1)) if len(runs) > 1 else float("nan")
    return out


def evaluate_row(row: Row, test: CxrSet, pairs: np.ndarray, verifier, classifiers, work: Path, args, log: Log) -> Row:
    """Anonymize the test images by ``row.spec`` and measure everything the table shows."""
    anonymize = make_anonymizer(row.spec, work)
    start = time.perf_counter()
    anonymized = anonymize(test.images, "test")
    row.seconds = (time.perf_counter() - start) / len(test)
    row.ssim = mean_ssim(anonymized, test.images)
    row.reid_original = reid_aucs(verifier, anonymized, test, pairs)
    for seed in args.attacker_seeds:
        strong = attacker(row.spec, seed, work, args, log)
        if strong is not None:
            row.retrained_scores.append(pair_scores(strong, anonymized, test.images, pairs))
            row.reid_retrained_runs.append(aucs_by_source(row.retrained_scores[-1], test, pairs))
    if row.reid_retrained_runs:
        row.reid_retrained = _mean_runs(row.reid_retrained_runs)
    labelled = np.flatnonzero(test.labelled)
    trained_against, independent = classifiers
    row.classification = label_aucs(test.labels[labelled], predict(trained_against, anonymized[labelled]))
    if independent is not None:
        row.classification_eval = label_aucs(test.labels[labelled], predict(independent, anonymized[labelled]))
    log(f"{row.name}: {row.reid_original} {row.reid_retrained} {row.classification['mean']:.4f} ssim {row.ssim:.4f}")
    return row


def compare_to_original(rows: list[Row], test: CxrSet, pairs: np.ndarray) -> None:
    """Each row's re-trained-attacker AUC minus the original images', with its bootstrap interval."""
    reference = next((r for r in rows if r.spec == "none" and r.retrained_scores), None)
    for r in rows:
        if reference is not None and r.retrained_scores and r is not reference:
            r.retrained_delta = r.reid_retrained["all"] - reference.reid_retrained["all"]
            r.retrained_delta_ci = patient_bootstrap(pairs, test.patients, r.retrained_scores, reference.retrained_scores)


def _pct(value: float | None) -> str:
    return "—" if value is None or math.isnan(value) else f"{100 * value:.1f}"


def _delta(row: Row) -> str:
    if row.retrained_delta_ci is None:
        return "—"
    low, high = (f"{100 * v:+.1f}" for v in row.retrained_delta_ci)
    return f"{100 * row.retrained_delta:+.1f} [{low}, {high}]"


def _short_name(row: Row) -> str:
    """The figure's label: "PriCheXy-Net 0.01", "DP-Pix", "Privacy-Net", "Gaussian blur"."""
    name = row.name.split(",")[0].split(" (")[0]
    return f"{name} {row.spec.split(':')[1]}" if row.spec.startswith("prichexy") else name


def table(rows: list[Row]) -> str:
    head = ("| anonymization | re-id AUC, original verifier (all / NIH / MHH) | re-id AUC, re-trained attacker, "
            "mean of seeds (all ± sd / NIH / MHH) | re-trained minus original images [95 % CI, patients and seeds] | classification AUC, mean of labels: C / C' | any finding: C / C' "
            "| SSIM | s/image |")
    lines = [head, "|" + "---|" * 8]
    for r in rows:
        orig = " / ".join(_pct(r.reid_original.get(k)) for k in ("all", "nih", "mhh"))
        strong = "—"
        if r.reid_retrained:
            n = len(r.reid_retrained_runs)
            spread = f" ± {_pct(r.reid_retrained['sd'])}" if n > 1 else ""
            strong = (f"{_pct(r.reid_retrained['all'])}{spread} / {_pct(r.reid_retrained['nih'])} / "
                      f"{_pct(r.reid_retrained['mhh'])} (n={n})")
        utility = f"{_pct(r.classification.get('mean'))} / {_pct(r.classification_eval.get('mean'))}"
        finding = f"{_pct(r.classification.get('abnormal'))} / {_pct(r.classification_eval.get('abnormal'))}"
        lines.append(f"| {r.name} | {orig} | {strong} | {_delta(r)} | {utility} | {finding} | {r.ssim:.3f} | {r.seconds:.4f} |")
    return "\n".join(lines)


def rows_to_run(work: Path, args) -> list[Row]:
    rows = [Row("original images", "none")]
    rows += [Row(f"PriCheXy-Net, mu = {mu}", f"prichexy:{mu}") for mu in MUS
             if (work / f"prichexy_mu{mu!r}.pt").exists() or args.shipped]
    rows += [Row(f"PriCheXy-Net, mu = {mu} (beyond the paper's range)", f"prichexy:{mu}") for mu in EXTRA_MUS
             if (work / f"prichexy_mu{mu!r}.pt").exists()]
    rows.append(Row("DP-Pix, b = 8, m = 1, eps = 0.1 (at 256 px)", "dppix"))
    if (work / "privacynet.pt").exists():
        rows.append(Row("Privacy-Net (2-D, as adapted by PriCheXy-Net)", "privacynet"))
    return rows


def main(argv: list[str] | None = None) -> int:
    from models.training.biometric.common import base_parser

    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--attackers", choices=("load", "train"), default="load",
                        help="load re-trained attackers from --work, or train the missing ones")
    parser.add_argument("--attacker-seeds", default="1,2,3",
                        help="seeds of the re-trained attackers averaged (attacker_<spec>[_seed<n>].pt)")
    parser.add_argument("--pairs-per-patient", type=int, default=0,
                        help="at most this many positive pairs per test patient (0: all; see cap_positives)")
    parser.add_argument("--blur-match", type=float, default=0.01, help="mu of the row the blur's SSIM matches")
    parser.add_argument("--shipped", action="store_true", help="evaluate every mu, with the shipped export if need be")
    parser.set_defaults(epochs=40, minutes=25.0)
    args = parser.parse_args(argv)
    args.attacker_seeds = [int(x) for x in args.attacker_seeds.split(",")]
    torch.set_num_threads(args.threads)
    log = Log()
    work = Path(args.work or WORK)
    verifier = load_checkpoint(SiameseVerifier(), fixed_network(work, "verifier"))
    classifier = load_checkpoint(AbnormalityClassifier(), fixed_network(work, "classifier"))
    independent = work / "classifier_eval.pt"
    classifiers = (classifier, load_checkpoint(AbnormalityClassifier(), independent) if independent.exists() else None)
    test = load_split(args.cxr, "test", args.size)
    pairs = evaluation_pairs(test)
    if args.pairs_per_patient:
        pairs = cap_positives(pairs, test.patients, args.pairs_per_patient)
    log(f"{len(test)} test images of {len(set(test.patients))} patients, {int(pairs[:, 2].sum())} positive pairs")
    rows = [evaluate_row(r, test, pairs, verifier, classifiers, work, args, log) for r in rows_to_run(work, args)]
    matched = next((r for r in rows if r.spec == f"prichexy:{args.blur_match}"), None)
    if matched is not None:
        sigma = blur_sigma_for(matched.ssim, test.images, work)
        rows.append(evaluate_row(Row(f"Gaussian blur, sigma = {sigma} px (SSIM of mu = {args.blur_match})",
                                     f"blur:{sigma}"), test, pairs, verifier, classifiers, work, args, log))
    compare_to_original(rows, test, pairs)
    print(table(rows))
    written = [{k: v for k, v in r.__dict__.items() if k != "retrained_scores"} for r in rows]
    (work / "evaluation.json").write_text(json.dumps(written, indent=2) + "\n")
    points = [(_short_name(r), (r.classification_eval or r.classification).get("mean", math.nan),
               (r.reid_retrained or r.reid_original).get("all", math.nan))
              for r in rows]
    (work / "trade_off.svg").write_text(trade_off_svg(points, "classification AUC of C' (else C), mean of labels (utility)",
                                                      "re-identification AUC, re-trained attacker (privacy risk)"))
    log(f"wrote {work / 'evaluation.json'} and {work / 'trade_off.svg'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
