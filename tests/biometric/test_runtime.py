"""The runtime of the biometric stage against the paper's definitions (models/biometric)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from models.biometric.deform import gaussian_1d, max_displacement, smooth_flow, warp
from models.biometric.dppix import cell_means, dp_pix, noise_scale
from models.biometric.quality import ssim
from models.biometric.runtime import FlowModel, WeightsMismatch, weights_name
from tests.biometric.synth import chest

torch = pytest.importorskip("torch")


def _smooth_random_flow(size: int = 64, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    raw = np.tanh(rng.normal(0, 2, (2, size, size))).astype(np.float32)
    return smooth_flow(raw)


def test_the_gaussian_is_the_paper_s_kernel_and_smoothing_matches_torch():
    from models.biometric.networks import GaussianSmoothing, gaussian_kernel

    k = gaussian_1d()
    assert k.shape == (9,) and abs(k.sum() - 1) < 1e-6
    np.testing.assert_allclose(np.outer(k, k), gaussian_kernel(9, 2.0).numpy(), atol=1e-7)
    raw = np.random.default_rng(1).uniform(-1, 1, (2, 40, 48)).astype(np.float32)
    expected = GaussianSmoothing(2)(torch.from_numpy(raw)[None])[0].numpy()
    np.testing.assert_allclose(smooth_flow(raw), expected, atol=1e-5)


@pytest.mark.parametrize("mu", [0.01, 0.1])
def test_warp_is_grid_sample_with_identity_minus_mu_flow(mu):
    from models.biometric.networks import deform

    image = chest(64, 64, seed=2)
    flow = _smooth_random_flow()
    expected = deform(torch.from_numpy(image)[None, None], torch.from_numpy(flow)[None], mu)[0, 0].numpy()
    out = warp(image, flow, mu)
    assert np.abs(out - image).max() > 1e-3  # it moved something
    np.testing.assert_allclose(out, expected, atol=2e-3)


def test_a_zero_flow_leaves_the_image_exactly():
    image = (chest(100, 80) * 4095).round().astype(np.uint16)
    out = warp(image, np.zeros((2, 64, 64), np.float32), 0.01)
    np.testing.assert_array_equal(np.rint(out).astype(np.uint16), image)


def _pattern(n: int) -> np.ndarray:
    """A smooth image sampled at the align_corners=True positions of an n x n matrix."""
    d = np.linspace(-1, 1, n, dtype=np.float32)
    y, x = np.meshgrid(d, d, indexing="ij")
    return 0.5 + 0.25 * np.sin(3 * x + 1) * np.cos(2 * y) + 0.2 * np.sin(5 * y)


def test_the_flow_serves_any_matrix_size_in_normalised_coordinates():
    """The same flow moves the same content on a 64 px and a 253 px matrix (253 = 63 x 4 + 1:
    every fourth pixel of it sits where a pixel of the small one does), by 4x the pixels."""
    flow = _smooth_random_flow()
    small, large = _pattern(64), _pattern(253)
    warped_small = warp(small, flow, 0.05)
    warped_large = warp(large, flow, 0.05)[::4, ::4]
    moved = np.abs(small - warped_small).mean()
    assert moved > 1e-3
    assert np.abs(warped_large - warped_small).mean() < 0.2 * moved
    assert max_displacement(flow, 0.05, 253, 253) == pytest.approx(4 * max_displacement(flow, 0.05, 64, 64), rel=0.01)


def test_the_onnx_export_computes_the_generator(exported_generator):
    from models.biometric.networks import PriCheXyNet

    model = PriCheXyNet(0.01, 8).eval()
    model.load_state_dict(torch.load(exported_generator / "model.pt"))
    runtime = FlowModel.load(0.01, exported_generator)
    image = chest(64, 64, seed=4)
    with torch.no_grad():
        expected = model.generator(torch.from_numpy(image)[None, None])[0].numpy()
    flow = runtime.flow(image)
    assert flow.shape == (2, 64, 64) and np.abs(expected).max() > 0.05
    np.testing.assert_allclose(flow, expected, atol=1e-4)
    # a larger rendering is brought to the network's size first
    assert runtime.flow(chest(300, 260, seed=4)).shape == (2, 64, 64)


def test_an_export_that_does_not_match_its_record_is_refused(exported_generator, tmp_path):
    for name in ("onnx", "json"):
        (tmp_path / f"prichexy_mu0.01.{name}").write_bytes((exported_generator / f"prichexy_mu0.01.{name}").read_bytes())
    record = json.loads((tmp_path / "prichexy_mu0.01.json").read_text())
    (tmp_path / "prichexy_mu0.01.json").write_text(json.dumps({**record, "onnx_sha256": "0" * 64}))
    with pytest.raises(WeightsMismatch):
        FlowModel.load(0.01, tmp_path)
    with pytest.raises(FileNotFoundError):
        FlowModel.load(0.005, tmp_path)
    assert weights_name(0.005) == "prichexy_mu0.005"


def test_dp_pix_is_constant_on_cells_in_range_and_noisy_at_the_stated_scale():
    image = chest(256, 256, seed=5)
    out = dp_pix(image, np.random.default_rng(0), b=8, m=1, eps=0.1)
    assert out.shape == image.shape and out.dtype == np.float32
    assert 0 <= out.min() and out.max() <= 1
    cells = out.reshape(32, 8, 32, 8)
    assert np.all(cells == cells[:, :1, :, :1])
    assert noise_scale(8, 1, 0.1) == pytest.approx(1 / 6.4)
    # with a large budget the noise is small: the cells are their means
    means, _counts = cell_means(image, 8)
    quiet = dp_pix(image, np.random.default_rng(0), b=8, m=1, eps=1e4)
    np.testing.assert_allclose(quiet[::8, ::8], means, atol=1e-3)
    # the noise's spread matches a Laplace of scale m / (b^2 eps): its mean absolute deviation
    noise = dp_pix(np.full((512, 512), 0.5), np.random.default_rng(1), b=8, m=1, eps=2.0)[::8, ::8] - 0.5
    assert np.abs(noise).mean() == pytest.approx(noise_scale(8, 1, 2.0), rel=0.1)


def test_dp_pix_cells_cut_by_the_edge_get_noise_for_their_own_size():
    means, counts = cell_means(np.ones((10, 13)), 8)
    assert counts.tolist() == [[64, 40], [16, 10]]
    np.testing.assert_allclose(means, 1.0)
    out = dp_pix(np.ones((10, 13)) * 0.5, np.random.default_rng(3), b=8)
    assert out.shape == (10, 13)


def test_dp_pix_repeats_with_the_same_generator_state():
    image = chest(64, 64)
    a = dp_pix(image, np.random.default_rng(42))
    b = dp_pix(image, np.random.default_rng(42))
    c = dp_pix(image, np.random.default_rng(43))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_ssim_of_an_image_with_itself_is_one_and_falls_with_blur():
    image = chest(128, 128)
    assert ssim(image, image) == pytest.approx(1.0)
    assert ssim(image, cv2.GaussianBlur(image, (0, 0), 3)) < ssim(image, cv2.GaussianBlur(image, (0, 0), 1)) < 1
