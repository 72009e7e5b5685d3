"""Grid neural operators: FNO, LSM, MgNO (shapes, parameter formulas, configs, learning, errors)."""

from __future__ import annotations

import fractions
import itertools
import json
import math

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla

torch = pytest.importorskip("torch")
F = torch.nn.functional

from pdesuite.operators.fno import FNO, SpectralConv  # noqa: E402
from pdesuite.operators.lsm import LSM, NeuralSpectralBlock  # noqa: E402
from pdesuite.operators.mgno import MgNO, VCycle  # noqa: E402
from pdesuite.operators.models import MODELS, build_model, grid_coordinates, model_from_config  # noqa: E402

# small settings that keep every test fast on a shared 2-core CPU
SMALL = {
    "fno": {"modes": 4, "width": 8, "layers": 2, "padding": 2, "projection_width": 16},
    "lsm": {"width": 8, "heads": 2, "num_basis": 4, "projection_width": 16},
    "mgno": {"width": 8, "layers": 3, "levels": 3},
}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _output(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(x)


# ------------------------------------------------------------------------------------- shapes

@pytest.mark.parametrize("spatial", [(32, 32), (48, 48), (64, 64), (33, 33), (40, 56)])
def test_fno_2d_keeps_the_grid_at_any_resolution(spatial):
    torch.manual_seed(0)
    model = FNO(in_channels=2, out_channels=3, **SMALL["fno"])
    out = _output(model, torch.randn(2, 2, *spatial))
    assert out.shape == (2, 3, *spatial) and torch.isfinite(out).all()


@pytest.mark.parametrize("ndim, spatial",
                         [(1, (64,)), (1, (45,)), (3, (12, 10, 8)), (3, (9, 16, 7))])
def test_fno_1d_and_3d_shapes(ndim, spatial):
    torch.manual_seed(0)
    model = FNO(ndim=ndim, **SMALL["fno"])
    assert _output(model, torch.randn(2, 1, *spatial)).shape == (2, 1, *spatial)


@pytest.mark.parametrize("spatial", [(32, 32), (48, 48), (33, 33), (40, 56), (7, 5)])
def test_lsm_pads_any_size_and_crops_back(spatial):
    torch.manual_seed(0)
    model = LSM(in_channels=1, out_channels=2, **SMALL["lsm"])
    out = _output(model, torch.randn(2, 1, *spatial))
    assert out.shape == (2, 2, *spatial) and torch.isfinite(out).all()


def test_lsm_padded_shape_and_patches():
    model = LSM(**SMALL["lsm"])
    # paper's Darcy size: padded to 96 and cut into 16 x 16 patches of 6 x 6 at the finest scale
    assert model.padded_shape((85, 85)) == ((96, 96), (6, 6))
    assert model.padded_shape((64, 64)) == ((64, 64), (4, 4))
    assert model.padded_shape((40, 56)) == ((48, 64), (3, 4))
    fixed = LSM(patch_size=6, **SMALL["lsm"])
    assert fixed.padded_shape((85, 85)) == ((96, 96), (6, 6))
    assert fixed.padded_shape((64, 64)) == ((96, 96), (6, 6))  # multiple of 16 * 6


def test_lsm_3d_shape():
    torch.manual_seed(0)
    model = LSM(ndim=3, **SMALL["lsm"])
    assert _output(model, torch.randn(1, 1, 9, 16, 12)).shape == (1, 1, 9, 16, 12)


@pytest.mark.parametrize("spatial", [(32, 32), (48, 48), (33, 33), (40, 56), (17, 9), (85, 85)])
def test_mgno_runs_at_odd_even_and_rectangular_sizes(spatial):
    torch.manual_seed(0)
    model = MgNO(in_channels=1, out_channels=2, width=8, layers=2, levels=4)
    out = _output(model, torch.randn(2, 1, *spatial))
    assert out.shape == (2, 2, *spatial) and torch.isfinite(out).all()


@pytest.mark.parametrize("ndim, spatial", [(1, (33,)), (3, (9, 12, 10))])
def test_mgno_1d_and_3d_shapes(ndim, spatial):
    torch.manual_seed(0)
    model = MgNO(ndim=ndim, **SMALL["mgno"])
    assert _output(model, torch.randn(2, 1, *spatial)).shape == (2, 1, *spatial)


def test_grid_coordinates_span_unit_interval_per_axis():
    coords = grid_coordinates(torch.zeros(2, 1, 3, 5), 2)
    assert coords.shape == (2, 2, 3, 5)
    np.testing.assert_allclose(coords[1, 0, :, 4].numpy(), [0.0, 0.5, 1.0])
    np.testing.assert_allclose(coords[0, 1, 2, :].numpy(), [0.0, 0.25, 0.5, 0.75, 1.0])


def test_grid_coordinates_follow_the_grid_convention():
    x = torch.zeros(2, 1, 4, 5, dtype=torch.float64)
    node, cell = grid_coordinates(x, 2, "node"), grid_coordinates(x, 2, "cell")
    torch.testing.assert_close(node, grid_coordinates(x, 2))  # node is the default
    assert node.shape == cell.shape == (2, 2, 4, 5) and cell.dtype == torch.float64
    # node: linspace(0, 1, n), both ends; cell: arange(n) / n, spacing 1 / n, the far end left out
    f64 = torch.float64
    torch.testing.assert_close(node[1, 0, :, 3], torch.linspace(0, 1, 4, dtype=f64), atol=0, rtol=0)
    torch.testing.assert_close(cell[1, 0, :, 3], torch.arange(4, dtype=f64) / 4, atol=0, rtol=0)
    torch.testing.assert_close(cell[0, 1, 2, :], torch.tensor([0.0, 0.2, 0.4, 0.6, 0.8], dtype=f64))
    # the two differ except at 0: by i (1/(n-1) - 1/n)
    torch.testing.assert_close(node[0, 0, :, 0] - cell[0, 0, :, 0],
                               torch.arange(4, dtype=torch.float64) * (1 / 3 - 1 / 4))
    with pytest.raises(ValueError, match=r"grid_convention: expected one of \['node', 'cell'\]"):
        grid_coordinates(x, 2, "centre")


@pytest.mark.parametrize("convention", ["node", "cell"])
def test_fno_appends_the_coordinates_of_its_grid_convention(convention):
    torch.manual_seed(0)
    model = FNO(**{**SMALL["fno"], "grid_convention": convention})
    seen = []
    handle = model.lift.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    x = torch.randn(2, 1, 16, 12)
    try:
        _output(model, x)
    finally:
        handle.remove()
    lifted = seen[0]  # [B, 1 + 2, 16, 12]: the field, then one coordinate channel per axis
    torch.testing.assert_close(lifted[:, :1], x, atol=0, rtol=0)
    torch.testing.assert_close(lifted[:, 1:], grid_coordinates(x, 2, convention), atol=0, rtol=0)
    expected = torch.linspace(0, 1, 12) if convention == "node" else torch.arange(12) / 12
    torch.testing.assert_close(lifted[0, 2, 0], expected, atol=0, rtol=0)


# --------------------------------------------------------------------- FNO spectral convolution

def _shift_weights(modes, shift, sizes):
    """Complex weights whose multiplier exp(-2 pi i k.s / n) is a circular shift by ``s``."""
    ndim = len(modes)
    corners = list(itertools.product((1, -1), repeat=ndim - 1))
    weight = torch.zeros(len(corners), 1, 1, *modes, dtype=torch.complex128)
    for c, signs in enumerate(corners):
        axes = [torch.arange(m) if sign > 0 else torch.arange(-m, 0)
                for sign, m in zip(signs, modes[:-1])]
        axes.append(torch.arange(modes[-1]))
        phase = sum(
            k.reshape([-1 if i == a else 1 for i in range(ndim)]) * s / n
            for a, (k, s, n) in enumerate(zip(axes, shift, sizes))
        )
        weight[c, 0, 0] = torch.exp(-2j * math.pi * phase)
    return torch.view_as_real(weight).float()


@pytest.mark.parametrize("sizes, shift", [((16,), (5,)), ((8, 10), (1, 3)), ((6, 8, 6), (2, 1, 3))])
def test_spectral_conv_with_a_shift_multiplier_is_a_circular_shift(sizes, shift):
    # all modes kept: rows 0..n/2-1 and -n/2..-1 on the leading axes, n/2+1 rfft bins on the last.
    # A wrong corner or frequency order breaks the shift.
    modes = tuple(n // 2 for n in sizes[:-1]) + (sizes[-1] // 2 + 1,)
    conv = SpectralConv(1, 1, modes)
    with torch.no_grad():
        conv.weight.copy_(_shift_weights(modes, shift, sizes))
    x = torch.randn(3, 1, *sizes, generator=torch.Generator().manual_seed(1))
    expected = torch.roll(x, shift, dims=tuple(range(2, 2 + len(sizes))))
    torch.testing.assert_close(conv(x), expected, atol=1e-5, rtol=0)


def test_spectral_conv_drops_frequencies_above_the_modes():
    conv = SpectralConv(1, 1, (3, 3))
    with torch.no_grad():
        conv.weight.copy_(_shift_weights((3, 3), (0, 0), (16, 16)))  # identity on kept modes
    i, j = torch.meshgrid(torch.arange(16.0), torch.arange(16.0), indexing="ij")
    low = torch.cos(2 * math.pi * (2 * i + 1 * j) / 16)  # frequencies (2, 1): kept
    high = torch.cos(2 * math.pi * (5 * i) / 16)  # frequency 5 > 3 modes: dropped
    out = conv((low + high).reshape(1, 1, 16, 16))[0, 0]
    torch.testing.assert_close(out, low, atol=1e-5, rtol=0)


def test_spectral_conv_on_a_coarse_grid_keeps_the_modes_it_resolves():
    # modes (6, 6) on an 8 x 8 grid: 4 rows per corner and 5 rfft bins fit. The result must be
    # the (4, 5)-mode operator whose weights are the sub-blocks for the same frequencies
    # (positive rows 0..3; negative rows -4..-1, i.e. the last 4 of the stored -6..-1).
    torch.manual_seed(0)
    wide, narrow = SpectralConv(2, 3, (6, 6)), SpectralConv(2, 3, (4, 5))
    with torch.no_grad():
        narrow.weight[0].copy_(wide.weight[0, :, :, :4, :5])
        narrow.weight[1].copy_(wide.weight[1, :, :, 2:6, :5])
    x = torch.randn(2, 2, 8, 8)
    torch.testing.assert_close(wide(x), narrow(x))
    model = FNO(modes=12, width=8, layers=2, padding=0)  # the default modes on a 10 x 6 grid
    assert _output(model, torch.randn(1, 1, 10, 6)).shape == (1, 1, 10, 6)


# ------------------------------------------------------------------------------- FNO padding

def _spectral_input_shape(model, x):
    """Spatial shape that the first Fourier layer sees (the padded grid)."""
    seen = []
    handle = model.spectral[0].register_forward_pre_hook(
        lambda module, args: seen.append(args[0].shape[2:]))
    try:
        _output(model, x)
    finally:
        handle.remove()
    return tuple(seen[0])


def _padded_period(model, n: int) -> fractions.Fraction:
    """The FFT period of ``model`` on an axis of ``n`` points, in units of the domain, exactly."""
    spacing = fractions.Fraction(1, n - 1 if model.grid_convention == "node" else n)
    return model.padded_shape((n,) * model.ndim)[0] * spacing


def test_fno_fraction_padding_keeps_the_padded_period_in_physical_units():
    node = FNO(**{**SMALL["fno"], "padding": 0.125})
    cell = FNO(**{**SMALL["fno"], "padding": 0.125, "grid_convention": "cell"})
    # node: the FFT of n points spans n spacings of 1 / (n - 1), one past the domain: the pad is
    # f (n - 1) - 1
    assert node.padding_points((17, 33)) == (1, 3) and node.padding_points((65, 129)) == (7, 15)
    # cell: n points span the domain: pad f n
    assert cell.padding_points((16, 32)) == (2, 4) and cell.padded_shape((16, 32)) == (18, 36)
    for model, sizes in ((node, (9, 17, 33, 65, 129)), (cell, (8, 16, 32, 64, 128))):
        assert {_padded_period(model, n) for n in sizes} == {fractions.Fraction(9, 8)}
    # forward pads that much
    assert _spectral_input_shape(cell, torch.randn(1, 1, 16, 32)) == (18, 36)
    assert _spectral_input_shape(node, torch.randn(1, 1, 33, 17)) == (36, 18)
    quarter = FNO(ndim=1, modes=4, width=8, layers=2, padding=0.25, projection_width=16)
    assert quarter.padded_shape((17,)) == (20,) and quarter.padded_shape((33,)) == (40,)  # 3, 7
    # points on one axis, a fraction on the other
    mixed = FNO(**{**SMALL["fno"], "padding": (5, 0.5)})
    assert mixed.padded_shape((20, 11)) == (25, 15) and mixed.padded_shape((40, 21)) == (45, 30)
    assert _spectral_input_shape(mixed, torch.randn(1, 1, 20, 11)) == (25, 15)
    assert FNO().padding is None and FNO().grid_convention == "node"  # the defaults
    # a fraction such as 3/31 counts as whole although 3/31 * 62 is 6 only up to rounding
    assert FNO(**{**SMALL["fno"], "padding": 3 / 31}).padding_points((32, 63)) == (2, 5)


def test_fno_default_padding_fixes_a_tenth_on_the_first_grid_and_keeps_it_exactly():
    torch.manual_seed(0)
    small = {key: value for key, value in SMALL["fno"].items() if key != "padding"}
    cell = FNO(**small, grid_convention="cell")
    assert cell.to_config()["padding"] is None
    assert cell.padding_reference.tolist() == [[0, 0], [0, 0]]
    # round(1.6) = 2 of 16 cells: a query fixes nothing
    assert cell.padding_points((16, 16)) == (2, 2)
    assert cell.padding_reference.tolist() == [[0, 0], [0, 0]]
    _output(cell, torch.randn(1, 1, 16, 16))  # the first grid fixes 2/16 = 1/8
    assert cell.padding_reference.tolist() == [[1, 8], [1, 8]]
    assert cell.padding_points((32, 64)) == (4, 8)  # on 32 cells the period is again 9/8 domains
    assert {_padded_period(cell, n) for n in (16, 32, 64)} == {fractions.Fraction(9, 8)}
    with pytest.raises(ValueError, match=r"padding 1/8 of the domain \(padding=None, fixed on the "
                                         r"first grid the model ran on\) is not a whole number of "
                                         r"grid points at 20 points on axis 0 "
                                         r".*\(16, 24, 32 points\)"):
        _output(cell, torch.randn(1, 1, 20, 16))
    node = FNO(**small)
    _output(node, torch.randn(1, 1, 85, 16))  # 85 nodes: round(8.4) = 8 of 84 spacings; 16: 2 of 15
    assert node.padding_reference.tolist() == [[2, 21], [2, 15]]
    assert node.padding_points((85, 16)) == (7, 1) and node.padding_points((169, 31)) == (15, 3)
    # (85 + 7) / 84 = (169 + 15) / 168 = 23/21 domains; (16 + 1) / 15 = (31 + 3) / 30 = 17/15
    period = fractions.Fraction
    assert period(85 + 7, 84) == period(169 + 15, 168) == period(23, 21)
    assert fractions.Fraction(16 + 1, 15) == fractions.Fraction(31 + 3, 30)
    # the state dict carries the fraction: a rebuilt model pads as the trained one did
    rebuilt = model_from_config(json.loads(json.dumps(node.to_config())))
    rebuilt.load_state_dict(node.state_dict())
    assert rebuilt.padding_points((169, 31)) == (15, 3)
    x = torch.randn(2, 1, 169, 31)
    torch.testing.assert_close(_output(rebuilt, x), _output(node, x), atol=0, rtol=0)
    assert "padding_reference" not in FNO(**SMALL["fno"]).state_dict()  # only padding=None has it
    tiny = FNO(**small)
    _output(tiny, torch.randn(1, 1, 4, 4))  # 3 spacings: at least one on a node grid
    assert tiny.padding_reference.tolist() == [[1, 3], [1, 3]]
    assert tiny.padding_points((7, 7)) == (1, 1)


def test_fno_refuses_a_resolution_where_the_fraction_is_not_whole_points():
    cell = FNO(**{**SMALL["fno"], "padding": 0.1, "grid_convention": "cell"})
    assert cell.padding_points((20, 30)) == (2, 3)
    message = (r"FNO: padding 0\.1 \(a fraction of the domain\) is not a whole number of grid "
               r"points at 16 points on axis 1 \(cell grid, a domain of 16 spacings: 0\.1 x 16 = "
               r"1\.6\), so the padded period would not be the same physical length as at other "
               r"resolutions\. Use a resolution where it is whole \(10, 20, 30 points\), a model "
               r"built with a padding fraction that is whole here \(0\.0625 = 1/16, 0\.125 = 2/16, "
               r"0\.1875 = 3/16\) or an int padding")
    with pytest.raises(ValueError, match=message):
        _output(cell, torch.randn(1, 1, 20, 16))  # forward refuses, never rounds
    node = FNO(**{**SMALL["fno"], "padding": 0.125})
    with pytest.raises(ValueError, match=r"at 32 points on axis 0 \(node grid, a domain of 31 "
                                         r"spacings: 0\.125 x 31 = 3\.875\).*\(25, 33, 41 points\)"
                                         r".*0\.12903225806451613 = 4/31"):
        node.padding_points((32, 33))
    suggested = FNO(**{**SMALL["fno"], "padding": 0.12903225806451613})  # what the message offers
    assert suggested.padding_points((32, 63)) == (3, 7)
    periods = {_padded_period(suggested, 32), _padded_period(suggested, 63)}
    assert periods == {fractions.Fraction(35, 31)}
    with pytest.raises(ValueError,
                       match=r"padding 0\.0 .* cannot be met on a node grid .* "
                             r"Pass padding=0, an int"):
        FNO(**{**SMALL["fno"], "padding": 0.0}).padding_points((9, 9))
    periodic = FNO(**{**SMALL["fno"], "padding": 0.0, "grid_convention": "cell"})
    assert periodic.padding_points((9, 9)) == (0, 0)
    assert FNO(**{**SMALL["fno"], "padding": 0}).padding_points((9, 9)) == (0, 0)


def test_fno_int_padding_still_means_grid_points():
    model = FNO(**{**SMALL["fno"], "padding": 9})
    assert model.padding_points((32, 63)) == (9, 9) and model.padded_shape((85, 85)) == (94, 94)
    assert _spectral_input_shape(model, torch.randn(1, 1, 32, 63)) == (41, 72)
    # a config written before fractions existed rebuilds the same model
    old_config = {"name": "fno", "in_channels": 1, "out_channels": 1, "ndim": 2, "modes": 4,
                  "width": 8,
                  "layers": 2, "padding": 9, "grid": True, "projection_width": 16}
    rebuilt = model_from_config(old_config)
    assert rebuilt.to_config() == old_config and rebuilt.padding_points((40, 40)) == (9, 9)
    assert FNO(**{**SMALL["fno"], "padding": 9}).to_config()["grid_convention"] == "node"


def test_a_config_from_before_grid_conventions_rebuilds_the_model_it_was_trained_as():
    # every argument but grid_convention: the float padding is rounded per grid, as it was
    # trained, and the config keeps its form, so that the run's checkpoints still match it
    old_config = {"name": "fno", "in_channels": 1, "out_channels": 1, "ndim": 2, "modes": 4,
                  "width": 8, "layers": 2, "padding": 0.1, "grid": True, "projection_width": 16}
    rebuilt = model_from_config(json.loads(json.dumps(old_config)))
    assert rebuilt.to_config() == old_config and rebuilt.grid_convention == "node"
    assert rebuilt.padding_points((85, 32)) == (8, 3) and rebuilt.padding_points((63, 64)) == (6, 6)
    assert _spectral_input_shape(rebuilt, torch.randn(1, 1, 85, 32)) == (93, 35)
    # a model built from a name is a new model, whatever arguments it is given: a fraction is
    # held exactly
    arguments = {key: value for key, value in old_config.items() if key != "name"}
    for new in (build_model("fno", **arguments), FNO(**arguments)):
        assert new.to_config() == {**old_config, "grid_convention": "node"}
        with pytest.raises(ValueError, match=r"padding 0\.1 \(a fraction of the domain\)"):
            new.padding_points((85, 32))


def test_fno_fraction_padding_config_round_trip():
    torch.manual_seed(0)
    model = FNO(**{**SMALL["fno"], "padding": (0.2, 3), "grid_convention": "cell"})
    config = json.loads(json.dumps(model.to_config()))
    assert config["padding"] == [0.2, 3] and isinstance(config["padding"][0], float)
    assert config["grid_convention"] == "cell"
    rebuilt = model_from_config(config)
    assert rebuilt.to_config() == config and rebuilt.padding == (0.2, 3)
    assert rebuilt.grid_convention == "cell"
    assert rebuilt.padded_shape((20, 30)) == model.padded_shape((20, 30)) == (24, 33)
    rebuilt.load_state_dict(model.state_dict())
    x = torch.randn(2, 1, 20, 30)
    torch.testing.assert_close(_output(rebuilt, x), _output(model, x), atol=0, rtol=0)
    scalar = FNO(**{**SMALL["fno"], "padding": 0.15}).to_config()["padding"]
    assert scalar == 0.15 and model_from_config(json.loads(json.dumps(
        FNO(**{**SMALL["fno"], "padding": 0.15}).to_config()))).padding == (0.15, 0.15)


def _smooth_field(n: int) -> torch.Tensor:
    t = torch.linspace(0.0, 1.0, n, dtype=torch.float64)
    x, y = torch.meshgrid(t, t, indexing="ij")
    field = torch.sin(2 * math.pi * x) * (1 + 0.5 * torch.cos(math.pi * y))
    return field.reshape(1, 1, n, n).float()


def test_fno_fraction_padding_gives_zero_shot_super_resolution():
    # The same weights at s = 33 and 2 s - 1 = 65 nodes of the unit square. With a fraction the
    # padded period is the same length on both grids (7 and 15 points: 40/32 = 80/64), so the
    # network discretises one operator and the outputs agree at the common nodes up to
    # discretisation error. With a fixed number of points (the same 7 at s, so both models are
    # identical there) the period shrinks on the finer grid, every Fourier weight meets another
    # frequency, and they disagree.
    torch.manual_seed(0)
    fraction = FNO(modes=6, width=8, layers=2, padding=0.25, projection_width=16)
    with torch.no_grad():  # let the Fourier path carry the signal (the 1x1 path is grid-blind)
        for pointwise, spectral in zip(fraction.pointwise, fraction.spectral):
            pointwise.weight.zero_()
            spectral.weight.mul_(8)
    fixed = FNO(modes=6, width=8, layers=2, padding=7, projection_width=16)
    fixed.load_state_dict(fraction.state_dict())
    coarse = _output(fraction, _smooth_field(33))
    torch.testing.assert_close(_output(fixed, _smooth_field(33)), coarse, atol=0, rtol=0)
    scale = (coarse - coarse.mean()).norm()
    error_fraction = (_output(fraction, _smooth_field(65))[:, :, ::2, ::2] - coarse).norm() / scale
    error_fixed = (_output(fixed, _smooth_field(65))[:, :, ::2, ::2] - coarse).norm() / scale
    assert error_fraction < 0.1, f"fraction padding: zero-shot disagreement {error_fraction:.3f}"
    assert error_fixed > 4 * error_fraction, (f"fixed {error_fixed:.3f} vs fraction "
                                              f"{error_fraction:.3f}")


# ---------------------------------------------------------------------------- LSM normalisation

def test_lsm_batch_norm_refuses_a_single_value_per_channel_in_train_mode():
    model = LSM(**SMALL["lsm"])  # norm="batch", the paper's
    model.train()
    with pytest.raises(ValueError, match=r"batch of 1 at input size \(12, 16\) leaves the coarsest "
                                         r"U-Net scale 1 x 1.*batch of at least 2.*norm='group'"):
        model(torch.randn(1, 1, 12, 16))
    assert model(torch.randn(2, 1, 12, 16)).shape == (2, 1, 12, 16)  # two values per channel
    assert model(torch.randn(1, 1, 17, 16)).shape == (1, 1, 17, 16)  # coarsest scale 2 x 1
    assert _output(model, torch.randn(1, 1, 12, 16)).shape == (1, 1, 12, 16)  # eval: running stats


def test_lsm_group_norm_trains_on_a_batch_of_one_and_is_per_sample():
    torch.manual_seed(0)
    model = LSM(**SMALL["lsm"], norm="group")
    x = torch.randn(3, 1, 12, 16)
    model.train()
    single = model(x[:1])  # a batch of 1 at 1 x 1 coarsest
    single.square().mean().backward()
    assert all(p.grad is not None for p in model.parameters())
    with torch.no_grad():
        batched = model(x)
    # per-sample statistics: a sample's output does not depend on its batch, nor on the mode
    torch.testing.assert_close(batched[:1], single.detach(), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(_output(model, x), batched, atol=1e-5, rtol=1e-5)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.GroupNorm)]
    assert {m.num_channels: m.num_groups for m in norms} == {8: 4, 16: 8, 32: 8, 64: 8}


def test_lsm_norm_parameter_counts():
    # GroupNorm has BatchNorm's affine parameters (2 per channel); without normalisation the
    # convolutions get a bias instead (1 per channel). The U-Net's normalised channels, by hand
    # for width w: encoders 2w + 4w + 8w + 16w + 16w, decoders 12w + 6w + 3w + 2w = 69 w.
    assert LSM(norm="group").parameter_count() == LSM().parameter_count() == 19_187_457
    assert LSM(norm="none").parameter_count() == 19_187_457 - 69 * 64
    none = LSM(**SMALL["lsm"], norm="none")
    norms = (torch.nn.BatchNorm2d, torch.nn.GroupNorm)
    assert not any(isinstance(m, norms) for m in none.modules())
    none.train()
    assert none(torch.randn(1, 1, 12, 16)).shape == (1, 1, 12, 16)


# ------------------------------------------------------------------------------------ V-cycle

@pytest.mark.parametrize("fine", [(8, 9), (7, 6), (17, 32)])
def test_prolongation_matches_transposed_conv_with_output_padding(fine):
    torch.manual_seed(0)
    coarse = torch.randn(2, 3, *((n + 1) // 2 for n in fine))
    # 3 taps (offsets -1, 0, 1): torch's padding=1 with output_padding 1 on even sizes
    cycle = VCycle(2, 3, (1, 1), (0,), "zeros", 2, prolongation_kernel=3)
    weight = cycle.prolongations[0].weight
    assert weight.shape == (3, 3, 3, 3)
    reference = F.conv_transpose2d(coarse, weight, stride=2, padding=1,
                                   output_padding=tuple(1 - n % 2 for n in fine))
    torch.testing.assert_close(cycle.prolong(weight, coarse, fine), reference)
    # 4 taps (offsets -1 .. 2): torch's padding=1 gives 2 n_c points, cropped to an odd size
    cycle = VCycle(2, 3, (1, 1), (0,), "zeros", 2, prolongation_kernel=4)
    weight = cycle.prolongations[0].weight
    assert weight.shape == (3, 3, 4, 4)
    reference = F.conv_transpose2d(coarse, weight, stride=2, padding=1)[:, :, :fine[0], :fine[1]]
    torch.testing.assert_close(cycle.prolong(weight, coarse, fine), reference)


@pytest.mark.parametrize("cycle, kernel", [("reference", 4), ("reference", 3), ("correction", 3),
                                           ("correction", 4)])
def test_circular_mgno_commutes_with_shifts_of_the_coarsest_spacing(cycle, kernel):
    # 5 levels halve 4 times: a roll by 16 points is a roll by 1 on every level, and with
    # circular padding (and no coordinates) the whole network commutes with it
    torch.manual_seed(0)
    options = {"width": 4, "layers": 2, "levels": 5, "cycle": cycle, "prolongation_kernel": kernel}
    model = MgNO(padding_mode="circular", **options)
    x = torch.randn(1, 1, 32, 48)
    shifted = _output(model, torch.roll(x, (16, 32), (2, 3)))
    torch.testing.assert_close(shifted, torch.roll(_output(model, x), (16, 32), (2, 3)), atol=1e-5,
                               rtol=0)
    zeros = MgNO(padding_mode="zeros", **options)
    differs = (_output(zeros, torch.roll(x, (16, 32), (2, 3)))
               - torch.roll(_output(zeros, x), (16, 32), (2, 3)))
    assert differs.abs().max() > 1e-3  # zero padding is not periodic


def test_circular_prolongation_wraps_onto_the_other_end():
    # one coarse impulse at the last coarse node (fine index 2 n_c - 2): its taps at offsets
    # -1, 0, +1, +2 reach fine indices 2 n_c - 3 .. 2 n_c; beyond n - 1 they wrap to 0, 1
    for n, kernel in ((9, 4), (8, 4), (9, 3), (8, 3)):
        cycle = VCycle(1, 1, (1, 1), (0,), "circular", 1, prolongation_kernel=kernel)
        taps = torch.arange(1.0, kernel + 1).reshape(1, 1, kernel)        # tap t has value t + 1
        coarse = torch.zeros(1, 1, (n + 1) // 2)
        coarse[0, 0, -1] = 1.0
        expected = torch.zeros(n)
        for t in range(kernel):
            expected[(2 * (coarse.shape[-1] - 1) + t - 1) % n] += t + 1
        torch.testing.assert_close(cycle.prolong(taps, coarse, (n,))[0, 0], expected)


def _conv(x, module, stride=1):
    return F.conv2d(x, module.weight, stride=stride, padding=1)


def test_reference_vcycle_is_the_documented_recursion():
    # two levels, pre (1, 2), post (1,), zero padding, written out with the module's weights
    torch.manual_seed(0)
    cycle = VCycle(2, 3, (1, 2), (1,), "zeros", 2, cycle="reference", prolongation_kernel=4)
    f = torch.randn(2, 2, 9, 12)
    u0 = _conv(f, cycle.pre_smoothers[0][0])                                 # from zero: S f
    f1 = _conv(f, cycle.restrictions[0], stride=2)                           # R f (the data)
    u1 = _conv(u0, cycle.solution_restrictions[0], stride=2)                # Pi u (the iterate)
    for smoother, operator in zip(cycle.pre_smoothers[1], cycle.pre_operators[1]):
        u1 = u1 + _conv(f1 - _conv(u1, operator), smoother)
    prolongated = F.conv_transpose2d(u1, cycle.prolongations[0].weight, stride=2, padding=1)
    u0 = u0 + prolongated[:, :, :9, :12]
    u0 = u0 + _conv(f - _conv(u0, cycle.post_operators[0][0]), cycle.post_smoothers[0][0])
    assert len(cycle.pre_operators[0]) == 0 and len(cycle.pre_operators[1]) == 2
    torch.testing.assert_close(cycle(f), u0, atol=1e-5, rtol=1e-5)


def test_correction_vcycle_is_the_documented_recursion():
    torch.manual_seed(0)
    cycle = VCycle(2, 3, (1, 2), (1,), "zeros", 2, cycle="correction", prolongation_kernel=3)
    f = torch.randn(2, 2, 9, 12)
    a0, a1 = cycle.operators["0"], cycle.operators["1"]
    u0 = _conv(f, cycle.pre_smoothers[0][0])
    f1 = _conv(f - _conv(u0, a0), cycle.restrictions[0], stride=2)  # R (f - A u): the residual
    u1 = _conv(f1, cycle.pre_smoothers[1][0])                       # coarse level from zero
    u1 = u1 + _conv(f1 - _conv(u1, a1), cycle.pre_smoothers[1][1])
    u0 = u0 + F.conv_transpose2d(u1, cycle.prolongations[0].weight, stride=2, padding=1,
                                 output_padding=(0, 1))
    u0 = u0 + _conv(f - _conv(u0, a0), cycle.post_smoothers[0][0])
    torch.testing.assert_close(cycle(f), u0, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("cycle", ["reference", "correction"])
def test_vcycle_is_linear_without_bias(cycle):
    torch.manual_seed(0)
    vcycle = VCycle(2, 3, (1, 2, 2), (1, 1), "zeros", 2, cycle=cycle)
    f, g = torch.randn(2, 2, 2, 19, 12)
    with torch.no_grad():
        torch.testing.assert_close(vcycle(2.5 * f - g), 2.5 * vcycle(f) - vcycle(g), atol=1e-5,
                                   rtol=1e-5)


# -------------------------------------------------------------------------- parameter counts

def _fno_formula(c_in, c_out, ndim, modes, width, layers, hidden=128):
    modes_product = math.prod(modes)
    lift = (c_in + ndim) * width + width
    fourier = layers * (2 ** ndim * width * width * modes_product + width * width + width)
    projection = width * hidden + hidden + hidden * c_out + c_out
    return lift + fourier + projection


def test_fno_default_parameter_count_is_the_papers_2_37m():
    assert FNO().parameter_count() == _fno_formula(1, 1, 2, (12, 12), 32, 4) == 2_368_001


@pytest.mark.parametrize("kwargs, formula_args", [
    ({"ndim": 1, "modes": 16, "width": 64, "layers": 4, "in_channels": 2}, (2, 1, 1, (16,), 64, 4)),
    ({"ndim": 3, "modes": (8, 6, 4), "width": 20, "layers": 3, "out_channels": 2},
     (1, 2, 3, (8, 6, 4), 20, 3)),
    ({"modes": (5, 7), "width": 12, "layers": 2, "in_channels": 3}, (3, 1, 2, (5, 7), 12, 2)),
])
def test_fno_parameter_count_formula(kwargs, formula_args):
    assert FNO(**kwargs).parameter_count() == _fno_formula(*formula_args)


def _mgno_formula(c_in, c_out, ndim, width, layers, pre, post, cycle="reference", kernel=4):
    k, q, levels = 3 ** ndim, kernel ** ndim, len(pre)
    n_s = sum(pre) + sum(post)
    channels = [c_in] + [width] * layers
    total = width * c_out                                                    # bias-free 1x1 output
    for a, b in zip(channels[:-1], channels[1:]):
        if cycle == "reference":  # an A per step but the first, R on f and Pi on u
            cycle_count = (k * a * b * (2 * n_s - 1)
                           + (levels - 1) * (k * a * a + k * b * b + q * b * b))
        else:  # an A per level (the coarsest only if it smooths twice), R on the residual
            n_a = (levels - 1) + (1 if pre[-1] >= 2 else 0)
            cycle_count = k * a * b * (n_s + n_a) + (levels - 1) * (k * a * a + q * b * b)
        total += cycle_count + a * b + b                                     # V-cycle + 1x1 path
    return total


def test_mgno_default_parameter_count_is_the_reference_codes():
    # by hand: width 24, levels (1, 1, 1, 2, 2) so 7 smoothers S and 6 operators A per cycle,
    # 4 level transitions each with R (on f), Pi (on u) and a 4x4 prolongation P
    first = 9 * 1 * 24 * 13 + 4 * (9 * 1 + 9 * 576 + 16 * 576) + (24 + 24)       # 1 -> 24
    middle = 9 * 24 * 24 * 13 + 4 * (9 * 576 + 9 * 576 + 16 * 576) + (576 + 24)  # 24 -> 24
    assert (first, middle) == (60_492, 146_328)
    # the paper's Darcy code, 5 layers of width 24: "about 0.6M"
    assert first + 4 * middle + 24 == 645_828
    formula = _mgno_formula(1, 1, 2, 24, 5, (1, 1, 1, 2, 2), (0, 0, 0, 0))
    assert MgNO().parameter_count() == formula == 645_828
    # the textbook cycle with 3x3 prolongation: 7 S and 5 A per cycle, R on the residual, no Pi
    first = 9 * 24 * 12 + 4 * (9 + 9 * 576) + 48
    middle = 9 * 576 * 12 + 4 * (9 * 576 + 9 * 576) + 600
    assert (first, middle) == (23_412, 104_280)
    textbook = MgNO(cycle="correction", prolongation_kernel=3)
    assert textbook.parameter_count() == first + 4 * middle + 24 == 440_556


@pytest.mark.parametrize("kwargs, formula_args", [
    ({"width": 16, "layers": 3, "levels": 4, "pre_smoothing": 1, "post_smoothing": (1, 0, 2)},
     (1, 1, 2, 16, 3, (1, 1, 1, 1), (1, 0, 2))),
    ({"width": 16, "layers": 3, "levels": 4, "pre_smoothing": 1, "post_smoothing": (1, 0, 2),
      "cycle": "correction"}, (1, 1, 2, 16, 3, (1, 1, 1, 1), (1, 0, 2), "correction")),
    ({"ndim": 1, "in_channels": 3, "out_channels": 2, "width": 10, "layers": 2, "levels": 3,
      "pre_smoothing": (2, 1, 3), "padding_mode": "circular", "prolongation_kernel": 3},
     (3, 2, 1, 10, 2, (2, 1, 3), (0, 0), "reference", 3)),
    ({"ndim": 1, "in_channels": 3, "out_channels": 2, "width": 10, "layers": 2, "levels": 3,
      "pre_smoothing": (2, 1, 3), "cycle": "correction"},
     (3, 2, 1, 10, 2, (2, 1, 3), (0, 0), "correction")),
    ({"ndim": 3, "width": 6, "layers": 1, "levels": 2}, (1, 1, 3, 6, 1, (2, 2), (0,))),
])
def test_mgno_parameter_count_formula(kwargs, formula_args):
    assert MgNO(**kwargs).parameter_count() == _mgno_formula(*formula_args)


def test_neural_spectral_block_parameter_count():
    c, tokens, basis = 32, 4, 12
    block = NeuralSpectralBlock(c, tokens, basis, heads=8, ndim=2)
    expected = 3 * c * c + 3 * c + tokens * c + 2 * basis * c
    assert sum(p.numel() for p in block.parameters()) == expected


def test_lsm_default_parameter_count():
    # the paper's Darcy setting (width 64, 4 tokens, 12 basis terms, 8 heads)
    assert LSM().parameter_count() == 19_187_457


@pytest.mark.parametrize("name, kwargs", [
    ("fno", SMALL["fno"]),
    ("lsm", SMALL["lsm"]),
    ("lsm", {**SMALL["lsm"], "norm": "group"}),
    ("mgno", {"width": 4, "layers": 2, "levels": 3, "pre_smoothing": 1, "post_smoothing": (1, 0)}),
    ("mgno", {"width": 4, "layers": 2, "levels": 3, "pre_smoothing": 2, "post_smoothing": (1, 0),
              "cycle": "correction"}),
])
def test_every_parameter_gets_a_gradient(name, kwargs):
    # an unused parameter would make DDP fail (or need find_unused_parameters)
    torch.manual_seed(0)
    model = build_model(name, **kwargs)
    model(torch.randn(2, 1, 20, 24)).square().mean().backward()
    missing = [key for key, p in model.named_parameters()
               if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []


# ------------------------------------------------------------------------------------ configs

@pytest.mark.parametrize("name, spatial",
                         [("fno", (20, 24)), ("lsm", (20, 24)), ("mgno", (20, 24))])
def test_config_round_trip_rebuilds_an_identical_model(name, spatial):
    torch.manual_seed(0)
    model = build_model(name, in_channels=2, out_channels=1, **SMALL[name])
    config = json.loads(json.dumps(model.to_config()))  # what a checkpoint stores
    assert config["name"] == name and config == model.to_config()
    torch.manual_seed(1)  # different fresh weights, then the saved ones
    rebuilt = model_from_config(config)
    assert type(rebuilt) is type(model) and rebuilt.to_config() == config
    state, rebuilt_state = model.state_dict(), rebuilt.state_dict()
    shapes = [(k, v.shape) for k, v in state.items()]
    assert shapes == [(k, v.shape) for k, v in rebuilt_state.items()]
    x = torch.randn(3, 2, *spatial)
    assert not torch.allclose(_output(model, x), _output(rebuilt, x))
    rebuilt.load_state_dict(state)
    torch.testing.assert_close(_output(rebuilt, x), _output(model, x), atol=0, rtol=0)
    assert type(model).from_config(config).parameter_count() == model.parameter_count()


def test_registry_and_build_model_overrides():
    assert MODELS == {"fno": FNO, "lsm": LSM, "mgno": MgNO}
    model = build_model("mgno", width=6, layers=2, padding_mode="circular")
    assert isinstance(model, MgNO) and model.to_config()["width"] == 6
    widened = build_model(model.to_config(), width=10)
    assert widened.to_config() == {**model.to_config(), "width": 10}
    assert build_model("fno").to_config()["modes"] == 12


def test_config_errors_are_clear():
    with pytest.raises(ValueError, match="unknown 'unet'"):
        build_model("unet")
    with pytest.raises(ValueError, match="is for model 'lsm', not 'fno'"):
        FNO.from_config(LSM(**SMALL["lsm"]).to_config())
    with pytest.raises(ValueError, match=r"unknown keys \['levels'\]"):
        model_from_config({"name": "fno", "levels": 3})
    with pytest.raises(ValueError, match="no 'name' key"):
        model_from_config({"width": 3})


# ----------------------------------------------------------------------------------- learning

def _darcy_solve(a: np.ndarray) -> np.ndarray:
    """``-div(a grad u) = 1`` on the unit square, ``u = 0`` on the boundary: 5-point FD on the
    ``n x n`` interior nodes (spacing ``1 / (n + 1)``), harmonic means of ``a`` on the faces."""
    n = a.shape[0]
    h = 1.0 / (n + 1)
    index = np.arange(n * n).reshape(n, n)
    rows_i, cols_j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    padded = np.pad(a, 1, mode="edge")  # a boundary face takes its cell's value
    diagonal = np.zeros((n, n))
    rows, cols, values = [], [], []
    for di, dj in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        neighbour = padded[1 + di:1 + di + n, 1 + dj:1 + dj + n]
        face = 2 * a * neighbour / (a + neighbour)
        diagonal += face
        ni, nj = rows_i + di, cols_j + dj
        inside = (ni >= 0) & (ni < n) & (nj >= 0) & (nj < n)
        rows.append(index[inside])
        cols.append(index[ni[inside], nj[inside]])
        values.append(-face[inside])
    rows.append(index.ravel())
    cols.append(index.ravel())
    values.append(diagonal.ravel())
    matrix = sp.csc_matrix((np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))),
                           shape=(n * n, n * n)) / h**2
    return spla.spsolve(matrix, np.ones(n * n)).reshape(n, n)


def _darcy_set(n: int, count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` Darcy pairs on ``n x n``: ``a`` piecewise constant on a 4 x 4 block pattern,
    each block 3 or 12 (the values of the FNO Darcy data). Returns ``x = (a - 7.5) / 4.5`` and
    ``u`` scaled by one global constant (relative errors do not see it), ``[count, 1, n, n]``."""
    rng = np.random.default_rng(seed)
    coefficients = [np.kron(np.where(rng.random((4, 4)) < 0.5, 3.0, 12.0),
                            np.ones((n // 4, n // 4)))
                    for _ in range(count)]
    u = np.stack([_darcy_solve(a) for a in coefficients])
    x = (np.stack(coefficients) - 7.5) / 4.5
    u = u / u.std()
    return (torch.tensor(x[:, None], dtype=torch.float32),
            torch.tensor(u[:, None], dtype=torch.float32))


def _relative_l2(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return ((prediction - target).flatten(1).norm(dim=1) / target.flatten(1).norm(dim=1)).mean()


def _steps_to_fit(model, x, y, lr, max_steps, target=0.05, check_every=10):
    """Adam on the relative L2 loss; the step count at which the eval-mode error is below target."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    error = float("inf")
    for step in range(1, max_steps + 1):
        model.train()
        optimizer.zero_grad()
        _relative_l2(model(x), y).backward()
        optimizer.step()
        if step % check_every == 0:
            error = _relative_l2(_output(model, x), y).item()
            if error < target:
                return step, error
    return None, error


def test_darcy_generator_solves_poisson_for_a_constant_coefficient():
    # a = 1: -lap u = 1, whose centre value is 0.0736713532 (series solution); a = 3 scales u by 1/3
    u = _darcy_solve(np.ones((31, 31)))
    assert u[15, 15] == pytest.approx(0.0736713532, abs=1e-4)
    np.testing.assert_allclose(_darcy_solve(np.full((31, 31), 3.0)), u / 3, rtol=1e-12)
    x, y = _darcy_set(16, 2, seed=3)
    assert x.shape == y.shape == (2, 1, 16, 16) and set(np.unique(x.numpy())) <= {-1.0, 1.0}
    assert torch.all(y > 0)  # maximum principle: f = 1 > 0 and u = 0 on the boundary


def test_fno_overfits_a_tiny_darcy_set_and_evaluates_at_twice_the_resolution():
    x, y = _darcy_set(16, 8, seed=0)
    torch.manual_seed(0)
    model = FNO(modes=6, width=12, layers=3, padding=4)
    steps, error = _steps_to_fit(model, x, y, lr=1e-2, max_steps=200)
    assert steps is not None, f"relative L2 {error:.3f} after 200 steps"
    fine = F.interpolate(x, size=(32, 32), mode="nearest")  # the same coefficients at 2x
    out = _output(model, fine)
    assert out.shape == (8, 1, 32, 32) and torch.isfinite(out).all()


def test_mgno_overfits_a_tiny_darcy_set():
    x, y = _darcy_set(16, 8, seed=0)
    torch.manual_seed(0)
    model = MgNO(width=12, layers=3, levels=3)  # the reference cycle, 4x4 prolongation
    steps, error = _steps_to_fit(model, x, y, lr=5e-3, max_steps=300)
    assert steps is not None, f"relative L2 {error:.3f} after 300 steps"


@pytest.mark.slow
def test_lsm_overfits_a_tiny_darcy_set():
    x, y = _darcy_set(24, 8, seed=0)  # padded to 32, 2 x 2 patches
    torch.manual_seed(0)
    model = LSM(width=8, heads=2, num_basis=4, projection_width=32)
    steps, error = _steps_to_fit(model, x, y, lr=5e-3, max_steps=200)
    assert steps is not None, f"relative L2 {error:.3f} after 200 steps (eval mode)"


# --------------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("name", ["fno", "lsm", "mgno"])
def test_wrong_channels_or_dimensionality_raise_value_error(name):
    model = build_model(name, in_channels=2, **SMALL[name])
    with pytest.raises(ValueError,
                       match=r"input of shape \(4, 3, 16, 16\); expected \[B, 2, n1, n2\]"):
        model(torch.zeros(4, 3, 16, 16))
    with pytest.raises(ValueError, match=r"input of shape \(4, 2, 16\).*2 spatial axes"):
        model(torch.zeros(4, 2, 16))
    with pytest.raises(ValueError, match=r"input of shape \(2, 16, 16\)"):
        model(torch.zeros(2, 16, 16))


def test_mgno_rejects_a_grid_too_small_for_its_levels():
    model = MgNO(width=4, layers=1, levels=5)
    assert model.min_size == 9
    assert model(torch.zeros(1, 1, 9, 9)).shape == (1, 1, 9, 9)
    with pytest.raises(ValueError,
                       match=r"\(1, 1, 8, 12\) is too small for 5 levels; expected at least 9"):
        model(torch.zeros(1, 1, 8, 12))


@pytest.mark.parametrize("factory, match", [
    (lambda: FNO(ndim=4), "ndim"),
    (lambda: FNO(modes=(12, 12, 12)), "modes"),
    (lambda: FNO(padding=-1), "padding: a number of grid points must be >= 0"),
    (lambda: FNO(padding=-0.1), r"padding: a fraction of the domain must be in \[0, 1\)"),
    (lambda: FNO(padding=1.0), r"padding: a fraction of the domain must be in \[0, 1\), got 1.0"),
    (lambda: FNO(padding=float("nan")), r"padding: a fraction .* got nan"),
    (lambda: FNO(padding=True), "padding: entries must be ints"),
    (lambda: FNO(padding=(0.1, False)), "padding: entries must be ints"),
    (lambda: FNO(padding=(0.1,)), "padding: expected an int, a float or 2 of them"),
    (lambda: FNO(padding="9"), "padding: expected an int, a float or 2 of them"),
    (lambda: FNO(grid_convention="centre"), r"grid_convention: expected one of \['node', 'cell'\]"),
    (lambda: LSM(norm="instance"), "norm: expected one of"),
    (lambda: LSM(width=20, heads=8), "divisible by heads"),
    (lambda: LSM(ndim=1), "ndim"),
    (lambda: MgNO(padding_mode="mirror"), "padding_mode"),
    (lambda: MgNO(levels=3, pre_smoothing=(1, 2)), "pre_smoothing"),
    (lambda: MgNO(levels=3, pre_smoothing=(1, 0, 1)), "pre_smoothing"),
    (lambda: MgNO(width=0), "width"),
    (lambda: MgNO(cycle="full"), "cycle: expected one of"),
    (lambda: MgNO(prolongation_kernel=5), "prolongation_kernel: expected one of"),
])
def test_bad_constructor_arguments(factory, match):
    with pytest.raises(ValueError, match=match):
        factory()


@pytest.mark.parametrize("factory, match", [
    # floats equal to a valid int, and bools, used to pass a membership test and fail in torch
    (lambda: MgNO(prolongation_kernel=4.0),
     r"prolongation_kernel: expected one of \(3, 4\) \(an int\), got 4.0"),
    (lambda: MgNO(prolongation_kernel=True), "prolongation_kernel"),
    (lambda: MgNO(ndim=2.0), "ndim"),
    (lambda: MgNO(ndim=True), "ndim"),
    (lambda: MgNO(in_channels=1.0), "in_channels"),
    (lambda: MgNO(out_channels=True), "out_channels"),
    (lambda: MgNO(width=8.0), "width"),
    (lambda: MgNO(layers=True), "layers"),
    (lambda: MgNO(levels=3.0), "levels"),
    (lambda: MgNO(levels=3, pre_smoothing=1.0), "pre_smoothing"),
    (lambda: MgNO(levels=3, pre_smoothing=(1, 1, 2.0)), "pre_smoothing"),
    (lambda: MgNO(levels=3, post_smoothing=(1.0, 0)), "post_smoothing"),
    (lambda: MgNO(levels=3, post_smoothing=False), "post_smoothing"),
    (lambda: VCycle(2, 3, (1, 1), (0,), "zeros", 2, prolongation_kernel=4.0),
     "prolongation_kernel"),
    (lambda: VCycle(2, 3, (1, 1), (0,), "zeros", 2, prolongation_kernel=True),
     "prolongation_kernel"),
    (lambda: VCycle(2.0, 3, (1, 1), (0,), "zeros", 2), "in_channels"),
    (lambda: VCycle(2, 3.0, (1, 1), (0,), "zeros", 2), "out_channels"),
    (lambda: VCycle(2, 3, (1, 1), (0,), "zeros", 2.0), "ndim"),
    (lambda: VCycle(2, 3, (1, 1), (0,), "zeros", True), "ndim"),
    (lambda: VCycle(2, 3, (1, 1.0), (0,), "zeros", 2), "pre_smoothing"),
    (lambda: VCycle(2, 3, (), (), "zeros", 2), "pre_smoothing"),
    (lambda: VCycle(2, 3, (1, 1), (0, 0), "zeros", 2), "post_smoothing"),
    (lambda: VCycle(2, 3, (1, 1), (0,), "mirror", 2), "padding_mode"),
])
def test_mgno_int_options_refuse_floats_and_bools(factory, match):
    with pytest.raises(ValueError, match=match):
        factory()


def test_mgno_stores_numpy_ints_as_ints_and_rebuilds():
    model = MgNO(ndim=np.int64(2), width=np.int64(4), layers=np.int32(1), levels=np.int64(3),
                 pre_smoothing=np.int64(2), post_smoothing=(np.int64(1), 0),
                 prolongation_kernel=np.int64(3))
    config = model.to_config()
    for key in ("ndim", "width", "layers", "levels", "pre_smoothing", "prolongation_kernel"):
        assert type(config[key]) is int, key
    assert config["post_smoothing"] == [1, 0]
    assert all(type(c) is int for c in config["post_smoothing"])
    assert json.loads(json.dumps(config)) == config
    rebuilt = model_from_config(config)
    assert rebuilt.to_config() == config
    # the 3-wide prolongation: q = 3**2 per weight pair, as the formula counts it
    formula = _mgno_formula(1, 1, 2, 4, 1, (2, 2, 2), (1, 0), kernel=3)
    assert rebuilt.parameter_count() == model.parameter_count() == formula
