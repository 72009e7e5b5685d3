"""S4D, DSS, S5 and STU layers: closed-form kernels, and convolution (or scan) against the
recurrence in float64."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pdesuite.dynamics.ssm import (DSS, S4D, S5, STU, direct_causal_conv, fft_causal_conv,
                                   hankel_matrix, hippo_legs, hippo_nplr, parallel_scan,
                                   perturb_then_diagonalize, s4d_init, sequential_scan,
                                   spectral_filters)


def _run_steps(layer, u):
    """Outputs ``[B, L, H]`` and the list of states of stepping ``layer`` through ``u``."""
    state = layer.default_state(u.shape[0])
    outputs, states = [], []
    for t in range(u.shape[1]):
        y, state = layer.step(u[:, t], state)
        outputs.append(y)
        states.append(state)
    return torch.stack(outputs, dim=1), states


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


# ---------------------------------------------------------------- convolution and scan helpers

def test_fft_and_direct_causal_convolution_agree_with_a_hand_computed_case():
    u = torch.tensor([[1.0, 2.0, 3.0, 4.0]], dtype=torch.float64)
    k = torch.tensor([[1.0, -1.0, 0.5]], dtype=torch.float64)
    expected = torch.tensor([[1.0, 1.0, 1.5, 2.0]], dtype=torch.float64)
    torch.testing.assert_close(direct_causal_conv(u, k), expected, rtol=0, atol=1e-14)
    torch.testing.assert_close(fft_causal_conv(u, k), expected, rtol=0, atol=1e-14)


@pytest.mark.parametrize("length", [1, 2, 3, 7, 16, 33])
def test_parallel_scan_equals_the_sequential_recurrence(length):
    g = torch.Generator().manual_seed(length)
    a = 0.9 * torch.randn(2, length, 5, dtype=torch.complex128, generator=g)
    b = torch.randn(2, length, 5, dtype=torch.complex128, generator=g)
    torch.testing.assert_close(parallel_scan(a, b), sequential_scan(a, b), rtol=0, atol=1e-12)
    # the first state is b_0 and the second a_1 b_0 + b_1, by hand
    x = parallel_scan(a, b)
    torch.testing.assert_close(x[:, 0], b[:, 0])
    if length > 1:
        torch.testing.assert_close(x[:, 1], a[:, 1] * b[:, 0] + b[:, 1])


# ---------------------------------------------------------------------------------------- S4D

def test_s4d_initialisations_follow_their_formulas():
    N = 8
    n = np.arange(N // 2)
    Lambda, B = s4d_init("lin", N)
    np.testing.assert_allclose(Lambda, -0.5 + 1j * np.pi * n)
    np.testing.assert_allclose(B, 1.0)
    Lambda, _ = s4d_init("inv", N)
    np.testing.assert_allclose(Lambda, -0.5 + 1j * (N / np.pi) * (N / (2 * n + 1) - 1))
    Lambda, B = s4d_init("legs", N)
    nplr = hippo_nplr("legs", N)
    np.testing.assert_allclose(Lambda.real, -0.5, atol=1e-12)
    assert np.all(Lambda.imag > 0)
    np.testing.assert_allclose(B, (nplr.V.conj().T @ nplr.B)[:N // 2], atol=1e-12)


def test_s4d_steps_are_log_uniform_in_the_default_range():
    torch.manual_seed(0)
    layer = S4D(4000, d_state=2)
    dt = torch.exp(layer.log_dt)
    assert dt.min() >= 1e-3 * (1 - 1e-6) and dt.max() <= 1e-1 * (1 + 1e-6)
    # log-uniform: half the mass below the geometric midpoint 1e-2, a tenth below 10^-2.8
    assert (dt < 1e-2).float().mean().item() == pytest.approx(0.5, abs=0.03)
    assert (dt < 10 ** -2.8).float().mean().item() == pytest.approx(0.1, abs=0.02)


@pytest.mark.parametrize("method", ["zoh", "bilinear"])
def test_s4d_kernel_matches_its_closed_form(method):
    torch.manual_seed(1)
    layer = S4D(3, d_state=10, init="inv", discretization=method).double()
    length = 40
    dt = np.exp(_numpy(layer.log_dt))[:, None]
    lam = -np.exp(_numpy(layer.log_neg_real)) + 1j * _numpy(layer.imag)
    C = _numpy(torch.view_as_complex(layer.C))
    B = _numpy(torch.view_as_complex(layer.B))
    ell = np.arange(length)
    if method == "zoh":
        # K_l = 2 Re sum_n C_n B_n (exp(dt lam) - 1) / lam exp(l dt lam)
        terms = (C * B * (np.exp(dt * lam) - 1) / lam)[..., None] * np.exp(
            ell * (dt * lam)[..., None])
    else:
        A_bar = (1 + dt * lam / 2) / (1 - dt * lam / 2)
        terms = (C * B * dt / (1 - dt * lam / 2))[..., None] * A_bar[..., None] ** ell
    expected = 2 * terms.sum(axis=1).real
    np.testing.assert_allclose(_numpy(layer.kernel(length)), expected, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("init", ["lin", "inv", "legs"])
@pytest.mark.parametrize("method", ["zoh", "bilinear"])
def test_s4d_fft_convolution_direct_convolution_and_recurrence_agree(init, method):
    torch.manual_seed(2)
    layer = S4D(4, d_state=16, init=init, discretization=method).double()
    u = torch.randn(3, 64, 4, dtype=torch.float64)
    y_fft, states = layer(u, return_states=True)
    direct = direct_causal_conv(u.transpose(1, 2), layer.kernel(64)).transpose(1, 2)
    y_direct = direct + u * layer.D
    y_step, step_states = _run_steps(layer, u)
    assert y_fft.abs().max() > 0.1
    torch.testing.assert_close(y_fft, y_direct, rtol=0, atol=1e-10)
    torch.testing.assert_close(y_fft, y_step, rtol=0, atol=1e-10)
    torch.testing.assert_close(states, torch.stack(step_states, dim=1), rtol=0, atol=1e-10)
    # the last state continues the recurrence exactly where the sequence ended
    more = torch.randn(3, 4, dtype=torch.float64)
    y_next, _ = layer.step(more, states[:, -1])
    y_whole = layer(torch.cat([u, more[:, None]], dim=1))[:, -1]
    torch.testing.assert_close(y_next, y_whole, rtol=0, atol=1e-10)


# ---------------------------------------------------------------------------------------- DSS

def test_dss_kernel_is_the_softmax_normalised_vandermonde_product():
    torch.manual_seed(3)
    seq_len = 30
    layer = DSS(2, seq_len=seq_len, d_state=8).double()
    dt = np.exp(_numpy(layer.log_dt))[:, None]
    lam = -np.exp(_numpy(layer.log_neg_real)) + 1j * _numpy(layer.imag)
    W = _numpy(torch.view_as_complex(layer.W))
    P = (dt * lam)[..., None] * np.arange(seq_len)        # [H, N/2, L], P_nl = dt lam_n l
    softmax = np.exp(P) / np.exp(P).sum(axis=-1, keepdims=True)
    expected = 2 * np.einsum("hn,hnl->hl", W * (np.exp(dt * lam) - 1) / lam, softmax).real
    np.testing.assert_allclose(_numpy(layer.kernel(seq_len)), expected, rtol=1e-11, atol=1e-13)
    # the initial eigenvalues: the skew part of HiPPO-LegS minus 1/2, upper half-plane
    Lambda, _ = s4d_init("legs", 8)
    np.testing.assert_allclose(lam, Lambda, rtol=1e-6)


@pytest.mark.parametrize("length", [10, 30, 45])
def test_dss_convolution_and_recurrence_agree(length):
    torch.manual_seed(4)
    layer = DSS(3, seq_len=30, d_state=16).double()
    u = torch.randn(2, length, 3, dtype=torch.float64)
    y, states = layer(u, return_states=True)
    y_step, step_states = _run_steps(layer, u)
    torch.testing.assert_close(y, y_step, rtol=0, atol=1e-10)
    torch.testing.assert_close(states[:, -1], step_states[-1], rtol=0, atol=1e-10)


# ----------------------------------------------------------------------------------------- S5

@pytest.mark.parametrize("init", ["ptd", "legs_n"])
@pytest.mark.parametrize("method", ["zoh", "bilinear"])
def test_s5_parallel_scan_convolution_and_recurrence_agree(init, method):
    torch.manual_seed(5)
    layer = S5(3, d_state=12, init=init, discretization=method).double()
    u = torch.randn(2, 37, 3, dtype=torch.float64)
    y_scan, states = layer(u, return_states=True)
    A_bar, B_bar, _ = layer.discrete()
    inputs = torch.einsum("ph,blh->blp", B_bar, u.to(B_bar.dtype))
    torch.testing.assert_close(states, sequential_scan(A_bar, inputs), rtol=0, atol=1e-10)
    y_step, step_states = _run_steps(layer, u)
    layer.mode = "conv"
    y_conv = layer(u)
    assert y_scan.abs().max() > 0.1
    torch.testing.assert_close(y_scan, y_step, rtol=0, atol=1e-10)
    torch.testing.assert_close(y_scan, y_conv, rtol=0, atol=1e-10)
    torch.testing.assert_close(states, torch.stack(step_states, dim=1), rtol=0, atol=1e-10)


def test_s5_starts_from_the_ptd_diagonalisation_of_legs():
    torch.manual_seed(6)
    P = 16
    layer = S5(2, d_state=P, init="ptd", seed=3).double()
    ptd = perturb_then_diagonalize(hippo_legs(P)[0], seed=3)
    lam = -np.exp(_numpy(layer.log_neg_real)) + 1j * _numpy(layer.imag)
    expected = np.minimum(ptd.Lambda.real, -1e-4) + 1j * ptd.Lambda.imag
    np.testing.assert_allclose(lam, expected, rtol=1e-6)
    # B~ C~ in the eigenbasis is B0 C0 in the original one: C~ B~ = C0 V V^-1 B0 = C0 B0
    C = _numpy(torch.view_as_complex(layer.C))
    B = _numpy(torch.view_as_complex(layer.B))
    product = C @ B
    np.testing.assert_allclose(product.imag, 0.0, atol=1e-3 * np.abs(product).max())


# ---------------------------------------------------------------------------------------- STU

def test_hankel_entries_and_spectral_filters_are_its_top_eigenvectors():
    Z = hankel_matrix(50)
    assert Z[0, 0] == pytest.approx(2 / (8 - 2))
    assert Z[0, 1] == pytest.approx(2 / (27 - 3))
    assert Z[4, 9] == pytest.approx(2 / (15 ** 3 - 15))  # i = 5, j = 10
    sigma, phi = spectral_filters(50, 8)
    np.testing.assert_allclose(Z @ phi, phi * sigma, atol=1e-14)
    np.testing.assert_allclose(phi.T @ phi, np.eye(8), atol=1e-12)
    np.testing.assert_allclose(sigma, np.sort(np.linalg.eigvalsh(Z))[::-1][:8], rtol=1e-10)
    assert np.all(np.diff(sigma) < 0)


def test_stu_layer_holds_the_scaled_filters_and_their_alternating_twins():
    layer = STU(2, seq_len=40, num_filters=6).double()
    sigma, phi = spectral_filters(40, 6)
    filters = _numpy(layer.filters)
    scaled = phi * sigma ** 0.25
    # eigenvectors are defined up to sign
    signs = np.sign(np.sum(filters[:6].T * scaled, axis=0))
    np.testing.assert_allclose(filters[:6].T * signs, scaled, rtol=1e-6, atol=1e-9)
    alternating = (-1.0) ** np.arange(40)[:, None]
    np.testing.assert_allclose(filters[6:].T, alternating * filters[:6].T, atol=1e-15)


@pytest.mark.parametrize("length", [1, 5, 24])
def test_stu_convolution_and_step_agree(length):
    torch.manual_seed(7)
    layer = STU(3, seq_len=24, num_filters=8).double()
    u = torch.randn(2, length, 3, dtype=torch.float64)
    y, U = layer(u, return_states=True)
    y_step, _ = _run_steps(layer, u)
    assert y.abs().max() > 1e-3
    torch.testing.assert_close(y, y_step, rtol=0, atol=1e-10)
    direct = direct_causal_conv(u.transpose(1, 2)[:, None], layer.filters[:, None])
    torch.testing.assert_close(U, direct.permute(0, 3, 1, 2), rtol=0, atol=1e-10)


def test_stu_autoregressive_term_alone_is_a_short_causal_filter():
    layer = STU(1, seq_len=10, num_filters=2, ar_order=3).double()
    with torch.no_grad():
        layer.M.zero_()
        layer.M_ar.copy_(torch.tensor([1.0, 10.0, 100.0], dtype=torch.float64).view(3, 1, 1))
    u = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64).view(1, 4, 1)
    expected = torch.tensor([1.0, 12.0, 123.0, 234.0], dtype=torch.float64).view(1, 4, 1)
    torch.testing.assert_close(layer(u), expected, rtol=0, atol=1e-12)


# ------------------------------------------------------------------------------ every layer

LAYERS = {
    "s4d": lambda: S4D(3, d_state=8),
    "s4d_bilinear": lambda: S4D(3, d_state=8, init="legs", discretization="bilinear"),
    "dss": lambda: DSS(3, seq_len=20, d_state=8),
    "s5": lambda: S5(3, d_state=8),
    "stu": lambda: STU(3, seq_len=20, num_filters=4),
}


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_gradients_reach_every_parameter(name):
    torch.manual_seed(8)
    layer = LAYERS[name]()
    u = torch.randn(2, 20, 3, requires_grad=True)
    y = layer(u)
    assert y.shape == u.shape
    (y ** 2).mean().backward()
    for parameter_name, parameter in layer.named_parameters():
        assert parameter.grad is not None, parameter_name
        assert torch.isfinite(parameter.grad).all(), parameter_name
        assert parameter.grad.abs().max() > 0, parameter_name
    assert u.grad.abs().max() > 0


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_float32_convolution_and_step_agree(name):
    torch.manual_seed(9)
    layer = LAYERS[name]()
    u = torch.randn(2, 20, 3)
    y_step, _ = _run_steps(layer, u)
    torch.testing.assert_close(layer(u), y_step, rtol=1e-4, atol=1e-4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", sorted(LAYERS))
def test_cuda_convolution_and_step_agree(name):
    torch.manual_seed(10)
    layer = LAYERS[name]().double().cuda()
    u = torch.randn(2, 20, 3, dtype=torch.float64, device="cuda")
    y_step, _ = _run_steps(layer, u)
    y = layer(u)
    assert y.device.type == "cuda"
    torch.testing.assert_close(y, y_step, rtol=0, atol=1e-10)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="u"):
        S4D(3, d_state=4)(torch.zeros(2, 5, 4))
    with pytest.raises(ValueError, match="init"):
        S4D(3, init="random")
    with pytest.raises(ValueError, match="discretization"):
        S5(3, discretization="euler")
    with pytest.raises(ValueError, match="d_state"):
        S4D(3, d_state=5)
    with pytest.raises(ValueError, match="num_filters"):
        STU(3, seq_len=4, num_filters=0)
    with pytest.raises(ValueError, match="seq_len"):
        DSS(3, seq_len=0)
    with pytest.raises(TypeError, match="u"):
        S4D(3, d_state=4)(np.zeros((2, 5, 3)))
    assert math.isfinite(S4D(3, d_state=4).kernel(3).sum().item())
