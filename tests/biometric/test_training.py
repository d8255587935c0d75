"""The training and evaluation code of models/training/biometric, on tiny generated data (and on
../shared/cxr's split where it is present)."""

from __future__ import annotations

import argparse
import itertools

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from models.training.biometric.anonymizers import make_anonymizer
from models.training.biometric.common import auc
from models.training.biometric.data import (
    CxrSet,
    epoch_pairs,
    evaluation_pairs,
    patient_batches,
)
from tests.biometric.synth import chest


def _tiny_set(patients: int = 6, per_patient: int = 3, size: int = 32) -> CxrSet:
    images, ids, sources = [], [], []
    for p in range(patients):
        for k in range(per_patient):
            images.append(chest(size, size, seed=100 * p + k))
            ids.append(f"t:{p}")
            sources.append("nih1000_64px" if p % 2 else "hannover_mhh")
    labels = np.zeros((len(ids), 14), np.float32)
    labels[::2, 2] = 1
    labels[1::3, 0] = 1
    return CxrSet(np.stack(images), ids, sources, labels, np.ones(len(ids), bool), [f"{i}.png" for i in range(len(ids))])


def _args(**kw) -> argparse.Namespace:
    base = {"epochs": 1, "minutes": 5.0, "batch": 8, "lr": 1e-3, "seed": 1, "patients": 2, "per_patient": 2, "rounds": 1,
                "pretrain_epochs": 1, "ac_weight": 1.0, "ver_weight": 1.0, "update_verifier": True}
    return argparse.Namespace(**{**base, **kw})


def test_auc_is_the_probability_a_positive_outscores_a_negative():
    rng = np.random.default_rng(0)
    y, s = rng.integers(0, 2, 60), np.round(rng.normal(size=60), 1)  # with ties
    brute = np.mean([1.0 if a > b else 0.5 if a == b else 0.0
                     for a, b in itertools.product(s[y == 1], s[y == 0])])
    assert auc(y, s) == pytest.approx(brute)
    assert np.isnan(auc(np.ones(3), np.arange(3)))


def test_pairs_and_batches_stay_within_a_source_and_balance_positives():
    data = _tiny_set()
    rng = np.random.default_rng(0)
    pairs = epoch_pairs(data, rng)
    assert pairs[:, 2].mean() == 0.5
    for a, b, same in pairs:
        assert data.sources[a] == data.sources[b]
        assert (data.patients[a] == data.patients[b]) == bool(same)
    fixed = evaluation_pairs(data)
    assert fixed[:, 2].sum() == 6 * 3 and len(fixed) == 2 * 6 * 3
    for batch in patient_batches(data, rng, patients=2, per_patient=2):
        assert len({data.sources[i] for i in batch}) == 1 and len(batch) == 4


def test_the_verifier_classifier_and_generator_train_and_the_evaluation_runs(tmp_path):
    from models.biometric.networks import PriCheXyNet
    from models.training.biometric.common import Log
    from models.training.biometric.evaluate import Row, reid_aucs, table
    from models.training.biometric.train_classifier import (
        label_aucs,
        predict,
        train_classifier,
    )
    from models.training.biometric.train_generator import train_generator
    from models.training.biometric.train_verifier import train_verifier

    torch.set_num_threads(1)
    data, log = _tiny_set(), Log()
    verifier, _ = train_verifier(data, data, _args(), log)
    classifier, _ = train_classifier(data, data, _args(), log)
    assert predict(classifier, data.images).shape == (len(data), 14)
    generator, best = train_generator(PriCheXyNet(0.01, 4), data, data, verifier, classifier, _args(), log)
    assert best["epoch"] == 1
    with torch.no_grad():
        out = generator(torch.from_numpy(data.images[:2])[:, None])[:, 0].numpy()
    assert np.abs(out - data.images[:2]).max() < 0.2  # a deformation of at most mu x half the width
    pairs = evaluation_pairs(data)
    scores = reid_aucs(verifier, out.repeat(9, axis=0)[:len(data)], data, pairs)
    assert set(scores) == {"all", "nih", "mhh"}
    utility = label_aucs(data.labels, predict(classifier, data.images), 1)
    row = Row("x", "none", reid_original=scores, reid_retrained={**scores, "sd": 0.01},
              reid_retrained_runs=[scores, scores], classification=utility, ssim=0.9, seconds=0.001)
    assert table([row]).count("\n") == 2


@pytest.mark.parametrize("spec", ["none", "dppix", "dppix:4,1,1", "blur:1.5"])
def test_the_anonymizers_keep_the_stack_s_shape_and_range(tmp_path, spec):
    images = np.stack([chest(64, 64, seed=s) for s in range(3)])
    out = make_anonymizer(spec, tmp_path)(images, "test")
    assert out.shape == images.shape and 0 <= out.min() and out.max() <= 1
    again = make_anonymizer(spec, tmp_path)(images, "test")
    assert np.array_equal(out, again)  # DP-Pix's noise is seeded by the split


def test_the_shared_split_is_patient_disjoint(cxr):
    from models.training.biometric.data import SPLITS, load_split

    patients = {split: set(load_split(cxr, split, size=16).patients) for split in SPLITS}
    assert not patients["train"] & patients["test"]
    assert not patients["train"] & patients["val"] and not patients["val"] & patients["test"]


def test_the_patient_bootstrap_brackets_a_real_difference_and_not_a_null_one():
    from models.training.biometric.evaluate import Row, patient_bootstrap, table

    data = _tiny_set(patients=12)
    pairs = evaluation_pairs(data)
    rng = np.random.default_rng(0)
    noise = [rng.random(len(pairs)) for _ in range(2)]
    assert patient_bootstrap(pairs, data.patients, noise[:1], noise[:1], rounds=50) == (0.0, 0.0)
    separating = [pairs[:, 2] + 0.5 * s for s in noise]  # every positive outscores every negative
    low, high = patient_bootstrap(pairs, data.patients, separating, noise, rounds=50)
    chance = np.mean([auc(pairs[:, 2], s) for s in noise])
    assert 0 < low <= 1 - chance <= high
    row = Row("x", "none", reid_retrained={"all": 0.6, "nih": 0.6, "mhh": 0.6, "sd": 0.01},
              retrained_delta=-0.2, retrained_delta_ci=(-0.25, -0.15), ssim=0.9, seconds=0.001)
    assert "-20.0 [-25.0, -15.0]" in table([row])


def test_capping_positives_per_patient_keeps_each_negative_with_its_positive():
    from models.training.biometric.evaluate import cap_positives

    data = _tiny_set(patients=4, per_patient=6)  # 15 positive pairs per patient
    pairs = evaluation_pairs(data)
    capped = cap_positives(pairs, data.patients, cap=4)
    n = len(capped) // 2
    assert n == 4 * 4 and capped[:n, 2].all() and not capped[n:, 2].any()
    assert np.array_equal(capped[:n, 0], capped[n:, 0])  # each negative shares its positive's first image
    owners = [data.patients[a] for a in capped[:n, 0]]
    assert all(owners.count(p) == 4 for p in set(owners))
    assert np.array_equal(cap_positives(pairs, data.patients, cap=15), pairs)
