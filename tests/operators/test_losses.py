"""Lp and H1 losses against hand computations and exact derivatives; the normaliser's statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("torch")

import torch

from pdesuite.operators.losses import H1Loss, LpLoss, spatial_gradient
from pdesuite.operators.normalizer import UnitGaussianNormalizer


def _pair():
    # Two samples of shape [1, 2]. Sample 0: target (3, 4), error (0.6, 0.8);
    # sample 1: target (1, 0), error (0, 2).
    target = torch.tensor([[[3.0, 4.0]], [[1.0, 0.0]]], dtype=torch.float64)
    pred = target + torch.tensor([[[0.6, 0.8]], [[0.0, 2.0]]], dtype=torch.float64)
    return pred, target


# ---------------------------------------------------------------------------------- LpLoss
def test_relative_l2_matches_hand_computation():
    pred, target = _pair()
    # |(0.6, 0.8)| / |(3, 4)| = 1/5 and |(0, 2)| / |(1, 0)| = 2.
    per_sample = LpLoss(reduction="none")(pred, target)
    np.testing.assert_allclose(per_sample.numpy(), [0.2, 2.0], rtol=1e-14)
    assert LpLoss()(pred, target).item() == pytest.approx(1.1, rel=1e-14)
    assert LpLoss(reduction="sum")(pred, target).item() == pytest.approx(2.2, rel=1e-14)


def test_relative_l1_and_absolute_l2_match_hand_computation():
    pred, target = _pair()
    # L1: (0.6 + 0.8) / (3 + 4) = 0.2 and 2 / 1 = 2.
    np.testing.assert_allclose(LpLoss(p=1, reduction="none")(pred, target).numpy(), [0.2, 2.0],
                               rtol=1e-14)
    # Absolute L2 on a unit domain: sqrt(mean(e²)) = sqrt(0.5) and sqrt(2).
    np.testing.assert_allclose(LpLoss(relative=False, reduction="none")(pred, target).numpy(),
                               [math.sqrt(0.5), math.sqrt(2.0)], rtol=1e-14)
    # Max norm: 0.8 / 4 and 2 / 1.
    np.testing.assert_allclose(LpLoss(p=float("inf"), reduction="none")(pred, target).numpy(),
                               [0.2, 2.0], rtol=1e-14)


def test_lp_loss_gradient_is_finite_at_an_exact_prediction():
    target = torch.ones(2, 1, 5)
    pred = target.clone().requires_grad_(True)
    LpLoss()(pred, target).backward()
    assert torch.equal(pred.grad, torch.zeros_like(pred))


@pytest.mark.parametrize("kwargs, match", [
    ({"p": 0}, "p: expected a positive number"),
    ({"reduction": "max"}, "reduction: expected one of"),
])
def test_lp_loss_rejects_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LpLoss(**kwargs)


def test_lp_loss_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match=r"shapes differ, \(2, 1, 4\) vs \(2, 1, 5\)"):
        LpLoss()(torch.zeros(2, 1, 4), torch.zeros(2, 1, 5))


# ------------------------------------------------------------------------------ derivatives
def test_fd_derivative_of_x_squared_is_exact_and_fft_is_badly_wrong():
    n = 33
    x = torch.linspace(0.0, 1.0, n, dtype=torch.float64)
    u = (x**2).reshape(1, 1, n)
    exact = 2 * x
    (fd,) = spatial_gradient(u, periodic=False)
    (fft,) = spatial_gradient(u, periodic=True)
    # Second-order differences (central and one-sided) are exact on a quadratic.
    assert (fd[0, 0] - exact).abs().max().item() < 1e-12
    # The periodic extension of x² jumps by 1 at x = 1 → 0: the FFT derivative is wrong by
    # about 6 times the size of the derivative itself (measured 5.99 at n = 33).
    relative_error = ((fft[0, 0] - exact).norm() / exact.norm()).item()
    assert relative_error > 3.0
    assert (fft[0, 0] - exact).abs().max().item() > 10.0


def test_fft_derivative_is_spectral_on_periodic_data_and_fd_second_order():
    n = 32
    x = torch.arange(n, dtype=torch.float64) / n  # the period [0, 1) without its right end
    u = torch.sin(2 * math.pi * x).reshape(1, 1, n)
    exact = 2 * math.pi * torch.cos(2 * math.pi * x)
    (fft,) = spatial_gradient(u, periodic=True)
    assert (fft[0, 0] - exact).abs().max().item() < 1e-11
    # Finite differences on the node grid would assume spacing 1/(n-1); give them the right
    # domain length (n-1)/n so that they see the same points.
    (fd,) = spatial_gradient(u, domain=(n - 1) / n, periodic=False)
    interior_error = (fd[0, 0, 1:-1] - exact[1:-1]).abs().max().item()
    h = 1.0 / n
    # Central difference error ≈ (2π)³ h² / 6 at its largest.
    assert interior_error == pytest.approx((2 * math.pi) ** 3 * h**2 / 6, rel=0.02)


def test_gradient_in_2d_respects_domain_lengths_and_per_axis_periodicity():
    nx, ny, lx, ly = 17, 24, 2.0, 0.5
    x = torch.linspace(0.0, lx, nx, dtype=torch.float64)[:, None]
    y = (torch.arange(ny, dtype=torch.float64) * ly / ny)[None, :]
    # Quadratic in x (non-periodic, FD exact), a period in y (periodic, FFT exact).
    u = (x**2 * torch.sin(2 * math.pi * y / ly)).reshape(1, 1, nx, ny)
    du_dx, du_dy = spatial_gradient(u, domain=(lx, ly), periodic=(False, True))
    exact_dx = 2 * x * torch.sin(2 * math.pi * y / ly)
    exact_dy = x**2 * (2 * math.pi / ly) * torch.cos(2 * math.pi * y / ly)
    assert (du_dx[0, 0] - exact_dx).abs().max().item() < 1e-11
    assert (du_dy[0, 0] - exact_dy).abs().max().item() < 1e-10


def test_gradient_rejects_bad_arguments():
    u = torch.zeros(1, 1, 8, 8)
    with pytest.raises(ValueError, match="domain: expected one value per spatial axis"):
        spatial_gradient(u, domain=(1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="domain: expected positive"):
        spatial_gradient(u, domain=-1.0)
    with pytest.raises(ValueError, match="at least 3 points"):
        spatial_gradient(torch.zeros(1, 1, 2))


# ---------------------------------------------------------------------------------- H1Loss
def test_h1_norm_of_x_squared_fd_exact_fft_wrong():
    n = 65
    x = torch.linspace(0.0, 1.0, n, dtype=torch.float64)
    u = (x**2).reshape(1, 1, n)
    zero = torch.zeros_like(u)
    # Discrete H1 norm with the exact derivative 2x.
    reference = math.sqrt(float((x**4).mean() + (4 * x**2).mean()))
    fd_norm = H1Loss(relative=False, periodic=False)(u, zero).item()
    fft_norm = H1Loss(relative=False, periodic=True)(u, zero).item()
    assert fd_norm == pytest.approx(reference, rel=1e-13)
    # measured 9.6 vs 1.24: the FFT derivative's Gibbs oscillations dominate the norm
    assert fft_norm > 5 * reference


def test_relative_h1_matches_hand_computation():
    n = 41
    x = torch.linspace(0.0, 2.0, n, dtype=torch.float64)
    target = (x**2).reshape(1, 1, n)
    pred = target + 0.01 * x.reshape(1, 1, n)
    # e = 0.01 x, e' = 0.01; target' = 2x. Both quadratics or lower: FD derivatives are exact.
    numerator = float((0.01 * x).pow(2).mean() + 0.01**2)
    denominator = float((x**4).mean() + (2 * x).pow(2).mean())
    expected = math.sqrt(numerator / denominator)
    assert H1Loss(domain=2.0)(pred, target).item() == pytest.approx(expected, rel=1e-12)
    # The absolute norm carries the domain length: ‖e‖² = L · mean(e² + e'²).
    absolute = H1Loss(relative=False, domain=2.0)(pred, target).item()
    assert absolute == pytest.approx(math.sqrt(2.0 * numerator), rel=1e-12)


def test_h1_loss_backpropagates_finite_gradients():
    rng = np.random.default_rng(3)
    target = torch.tensor(rng.standard_normal((3, 2, 9, 7)))
    pred = (target + 0.1 * torch.tensor(rng.standard_normal((3, 2, 9, 7)))).requires_grad_(True)
    for periodic in (False, True):
        pred.grad = None
        H1Loss(periodic=periodic)(pred, target).backward()
        assert torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0
    exact = target.clone().requires_grad_(True)
    H1Loss()(exact, target).backward()
    assert torch.equal(exact.grad, torch.zeros_like(exact))


# ------------------------------------------------------------------------------ normaliser
def test_normalizer_statistics_round_trip_and_batching():
    rng = np.random.default_rng(7)
    data = rng.standard_normal((12, 3, 5, 4)) * np.array([1.0, 10.0, 0.1])[None, :, None, None] \
        + np.array([0.0, -5.0, 3.0])[None, :, None, None]
    x = torch.tensor(data, dtype=torch.float32)
    whole = UnitGaussianNormalizer().fit(x)
    per_channel = data.transpose(1, 0, 2, 3).reshape(3, -1)
    np.testing.assert_allclose(whole.mean.numpy(), per_channel.mean(axis=1), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(whole.std.numpy(), per_channel.std(axis=1), rtol=1e-6)
    batched = UnitGaussianNormalizer().fit([x[:5], x[5:6], x[6:]])
    np.testing.assert_allclose(batched.mean.numpy(), whole.mean.numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(batched.std.numpy(), whole.std.numpy(), rtol=1e-6)
    encoded = whole.encode(x)
    flat = encoded.transpose(0, 1).reshape(3, -1)
    np.testing.assert_allclose(flat.mean(1).numpy(), 0.0, atol=1e-5)
    np.testing.assert_allclose(flat.std(1, unbiased=False).numpy(), 1.0, rtol=1e-4)
    assert torch.allclose(whole.decode(encoded), x, rtol=1e-5, atol=1e-5)
    restored = UnitGaussianNormalizer.from_state_dict(whole.state_dict())
    assert torch.equal(restored.encode(x), encoded)


def test_normalizer_ignores_non_finite_entries_and_checks_channels():
    x = torch.tensor([[[1.0, 3.0, float("nan")]], [[5.0, float("inf"), 7.0]]])
    normalizer = UnitGaussianNormalizer().fit(x)
    # finite values 1, 3, 5, 7: mean 4, population std sqrt(5)
    assert normalizer.mean.item() == pytest.approx(4.0)
    assert normalizer.std.item() == pytest.approx(math.sqrt(5.0))
    with pytest.raises(ValueError, match=r"expected \[B, 1, \*spatial\]"):
        normalizer.encode(torch.zeros(2, 2, 3))
    with pytest.raises(RuntimeError, match="call fit"):
        UnitGaussianNormalizer().encode(x)
    with pytest.raises(ValueError, match="no finite values"):
        UnitGaussianNormalizer().fit(torch.full((2, 1, 3), float("nan")))
