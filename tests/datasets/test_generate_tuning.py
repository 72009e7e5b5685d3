"""Dataset generation with a tuner choosing SSOR's ω (or the recycled dimension k) per solve."""

import json

import numpy as np
import pytest

from pdesuite.datasets.pde_family import get_family
from pdesuite.datasets.generation import cli_generate, generate, resolve_solver_config
from pdesuite.datasets.storage import open_dataset
from pdesuite.solvers import solve
from pdesuite.solvers.tuning import omega_grid
from tests.datasets.test_generate import TinyHeat, _arrays, _assert_bitwise_equal

RTOL = 1e-8


def _darcy(resolution):
    return get_family("darcy", resolution=resolution)


def _generate(family, n, path, solver, **kwargs):
    kwargs.setdefault("progress", False)
    return generate(family, n, path, solver=solver, **kwargs)


def _independent_iterations(family, seed, n, omega):
    """Iterations of SSOR-PCG at a fixed ω on samples 0..n-1, solved here, not by generate."""
    iterations = []
    for index in range(n):
        system = family.assemble(family.sample(np.random.default_rng([seed, index])))
        result = solve(system.A, system.b, method="cg", M="ssor", pc_omega=omega, rtol=RTOL)
        assert result.converged
        iterations.append(result.iterations)
    return np.array(iterations)


def test_tuned_omega_is_stored_in_the_grid_and_is_the_omega_that_was_used(tmp_path):
    family = _darcy(10)
    path = _generate(family, 8, tmp_path / "t.h5", {"method": "cg", "M": "ssor", "tune": "omega"},
                     chunk_size=4, seed=3)
    arrays = _arrays(path)
    omega = arrays["solver/omega"]
    grid = omega_grid()
    assert omega.shape == (8,) and omega.dtype == np.float64
    assert all(np.any(value == grid) for value in omega)
    # Re-solving each sample at its stored ω gives exactly the stored iteration count.
    for index in range(8):
        system = family.assemble(family.sample(np.random.default_rng([3, index])))
        result = solve(
            system.A, system.b, method="cg", M="ssor", pc_omega=float(omega[index]), rtol=RTOL
        )
        assert result.iterations == arrays["solver/iterations"][index]
    assert arrays["solver/converged"].all() and np.all(arrays["solver/residual"] <= RTOL)
    # A tuner per block, seeded by (seed, block): the two blocks play different sequences.
    order = arrays["solve_order"]
    assert not np.array_equal(omega[order[:4]], omega[order[4:]])
    with open_dataset(path) as handle:
        tune = json.loads(handle.attrs["solver_config"])["tune"]
    assert tune == {
        "option": "omega",
        "target": "pc_omega",
        "tuner": "tsallis",
        "values": grid.tolist(),
        "context": None,
        "context_range": None,
        "tuner_options": {},
    }


def test_bitwise_identical_for_one_and_two_workers_and_after_a_resume(tmp_path):
    family = _darcy(10)
    solver = {"method": "rcg", "M": "ssor", "tune": "omega"}
    one = _arrays(_generate(family, 12, tmp_path / "one.h5", solver, chunk_size=3, keep_parts=True))
    two = _arrays(_generate(family, 12, tmp_path / "two.h5", solver, chunk_size=3, workers=2))
    _assert_bitwise_equal(one, two)
    assert "solver/omega" in one
    # Resume: two of the four blocks lost; the rerun solves them again with fresh tuners.
    (tmp_path / "one.h5").unlink()
    parts = tmp_path / "one.h5.parts"
    for block in (1, 3):
        (parts / f"block_{block:06d}.h5").unlink()
    resumed = _arrays(_generate(family, 12, tmp_path / "one.h5", solver, chunk_size=3))
    _assert_bitwise_equal(one, resumed)
    assert not parts.exists()


def test_a_partial_run_with_another_tuner_is_refused(tmp_path):
    family = _darcy(8)
    out = tmp_path / "p.h5"
    _generate(family, 4, out, {"method": "cg", "M": "ssor", "tune": "omega"}, chunk_size=2,
              keep_parts=True)
    out.unlink()
    other = {"method": "cg", "M": "ssor", "tune": {"option": "omega", "tuner": "chebcb"}}
    with pytest.raises(ValueError, match="plan.json") as error:
        _generate(family, 4, out, other, chunk_size=2)
    assert "solver:" in str(error.value) and "chebcb" in str(error.value)


@pytest.mark.parametrize("method", ["cg", "rcg"])
def test_fixed_tuner_equals_a_plain_run_with_that_omega(tmp_path, method):
    family = _darcy(12)
    fixed = _arrays(_generate(family, 6, tmp_path / "f.h5", {
        "method": method, "M": "ssor", "tune": {"option": "omega", "tuner": "fixed", "value": 1.5}},
        chunk_size=3))
    plain = _arrays(_generate(family, 6, tmp_path / "p.h5", {"method": method, "M": "ssor",
                                                             "pc_omega": 1.5}, chunk_size=3))
    assert np.all(fixed.pop("solver/omega") == 1.5)
    _assert_bitwise_equal(fixed, plain)
    if method == "cg":
        reference = _independent_iterations(family, 0, 6, 1.5)
        assert np.array_equal(fixed["solver/iterations"], reference)


def test_tsallis_learns_the_best_omega_within_a_block(tmp_path):
    """64 Darcy systems (24², 484 unknowns), SSOR-PCG, ω from {1, 1.3, 1.6, 1.9}, one block.

    Measured (seed 0): iterations 29.8 at ω=1, 19.4 at the best fixed ω=1.6, 24.7 by uniform
    play; Tsallis-INF 20.5, playing ω=1.6 in 94% of the second half of the block.
    """
    family, n, values = _darcy(24), 64, [1.0, 1.3, 1.6, 1.9]
    per_omega = np.array([_independent_iterations(family, 0, n, omega) for omega in values])
    path = _generate(family, n, tmp_path / "l.h5", {
        "method": "cg", "M": "ssor", "tune": {"option": "omega", "values": values}}, chunk_size=n)
    arrays = _arrays(path)
    tuned = arrays["solver/iterations"].mean()
    omega_one, uniform, best = per_omega[0].mean(), per_omega.mean(), per_omega.mean(axis=1).min()
    assert tuned <= 0.72 * omega_one  # measured 0.69
    assert tuned <= 0.88 * uniform  # measured 0.83: it learns, not merely spreads its bets
    assert tuned <= 1.08 * best  # measured 1.05
    second_half = arrays["solver/omega"][arrays["solve_order"][n // 2:]]
    assert np.mean(second_half == values[int(np.argmin(per_omega.mean(axis=1)))]) >= 0.75


def test_default_tuning_beats_omega_one_on_darcy(tmp_path):
    """The defaults (Tsallis-INF, 20 values of ω in [1, 1.95]) on 32 Darcy systems (24²).

    Measured: 22.3 iterations per solve against 29.7 for SSOR-PCG at ω = 1 (ratio 0.75).
    """
    family, n = _darcy(24), 32
    path = _generate(family, n, tmp_path / "d.h5", {"method": "cg", "M": "ssor", "tune": "omega"},
                     chunk_size=n)
    tuned = _arrays(path)["solver/iterations"].mean()
    assert tuned <= 0.82 * _independent_iterations(family, 0, n, 1.0).mean()


def test_tuned_recycled_dimension(tmp_path):
    family = _darcy(12)
    path = _generate(
        family,
        8,
        tmp_path / "k.h5",
        {"method": "rcg", "M": "jacobi", "ell": 16, "tune": "k"},
        chunk_size=4,
    )
    arrays = _arrays(path)
    with open_dataset(path) as handle:
        config = json.loads(handle.attrs["solver_config"])
    assert config["k"] is None and config["tune"]["values"] == [2, 4, 6, 8, 10, 12]
    assert set(arrays["solver/k"].tolist()) <= {2.0, 4.0, 6.0, 8.0, 10.0, 12.0}
    assert arrays["solver/converged"].all() and np.all(arrays["solver/residual"] <= RTOL)
    # A fixed tuner at k = 6 is the plain run with k = 6.
    fixed = _arrays(
        _generate(
            family,
            8,
            tmp_path / "kf.h5",
            {
                "method": "rcg",
                "M": "jacobi",
                "ell": 16,
                "tune": {"option": "k", "tuner": "fixed", "value": 6},
            },
            chunk_size=4,
        )
    )
    plain = _arrays(
        _generate(
            family,
            8,
            tmp_path / "kp.h5",
            {"method": "rcg", "M": "jacobi", "ell": 16, "k": 6},
            chunk_size=4,
        )
    )
    assert np.all(fixed.pop("solver/k") == 6)
    _assert_bitwise_equal(fixed, plain)


@pytest.mark.parametrize(
    "tune",
    [
        {"option": "omega", "tuner": "chebcb"},
        {
            "option": "omega",
            "tuner": "contextual-tsallis",
            "bins": 3,
            "context": "parameter-std:coefficient",
            "context_range": [0.0, 2.0],
        },
    ],
)
def test_contextual_tuners(tmp_path, tune):
    family = _darcy(10)
    arrays = _arrays(
        _generate(
            family, 6, tmp_path / "c.h5", {"method": "cg", "M": "ssor", "tune": tune}, chunk_size=6
        )
    )
    assert all(np.any(value == omega_grid()) for value in arrays["solver/omega"])
    assert arrays["solver/converged"].all()
    resolved = resolve_solver_config({"method": "cg", "M": "ssor", "tune": tune}, spd=True)["tune"]
    assert resolved["context"] == tune.get("context", "diagonal-contrast")
    assert resolved["context_range"] == tune.get("context_range", [0.0, 2.0])


def test_a_trajectory_stores_the_mean_omega_of_its_solves(tmp_path):
    family = TinyHeat(6)  # 3 linear solves per sample
    arrays = _arrays(
        _generate(
            family,
            4,
            tmp_path / "h.h5",
            {"method": "cg", "M": "ssor", "tune": {"option": "omega", "values": [1.0, 1.5]}},
            chunk_size=4,
        )
    )
    sums = np.round(3 * arrays["solver/omega"], 12)
    assert set(sums.tolist()) <= {3.0, 3.5, 4.0, 4.5} and np.all(arrays["solver/steps"] == 3)


def test_relaxation_method_omega(tmp_path):
    family = _darcy(8)
    config = resolve_solver_config({"method": "ssor", "tune": "omega"}, spd=True)
    assert config["tune"]["target"] == "omega"
    arrays = _arrays(_generate(family, 3, tmp_path / "r.h5", {"method": "ssor", "tune": "omega"}))
    system = family.assemble(family.sample(np.random.default_rng([0, 0])))
    reference = solve(
        system.A, system.b, method="ssor", omega=float(arrays["solver/omega"][0]), rtol=RTOL
    )
    assert reference.iterations == arrays["solver/iterations"][0]


@pytest.mark.parametrize(
    "solver, message",
    [
        ({"method": "cg", "M": "ssor", "tune": "restart"}, "tune option"),
        ({"method": "cg", "M": "ssor", "tune": {"option": "omega", "tuner": "ucb"}}, "tune tuner"),
        (
            {"method": "cg", "M": "ssor", "tune": {"option": "omega", "values": [1.0, 2.0]}},
            r"\(0, 2\)",
        ),
        ({"method": "cg", "M": "ssor", "tune": {"option": "omega", "values": [0.0]}}, r"\(0, 2\)"),
        ({"method": "cg", "M": "ssor", "tune": {"option": "omega", "values": []}}, "empty"),
        ({"method": "cg", "M": "ilu", "tune": "omega"}, "'omega' needs M"),
        ({"method": "cg", "M": "ssor", "pc_omega": 1.2, "tune": "omega"}, "conflicts"),
        ({"method": "cg", "tune": "k"}, "RecyclingSolver"),
        ({"method": "rcg", "k": 10, "tune": "k"}, "conflicts"),
        (
            {"method": "rcg", "ell": 16, "tune": {"option": "k", "values": [4, 16]}},
            r"\[1, ell=16\)",
        ),
        ({"method": "rcg", "ell": 16, "tune": {"option": "k", "values": [-1]}}, r"\[1, ell=16\)"),
        (
            {"method": "rcg", "tune": {"option": "k", "values": [4, 40]}},
            r"\[1, ell=40\)",
        ),  # max(2k, 30), k=20
        (
            {"method": "gcrodr", "restart": 16, "tune": {"option": "k", "values": [4, 16]}},
            r"\[1, restart=16\)",
        ),
        ({"method": "rcg", "tune": {"option": "k", "values": [2.5]}}, "integers"),
        (
            {"method": "cg", "M": "ssor", "tune": {"option": "omega", "tuner": "fixed"}},
            "needs 'value'",
        ),
        ({"method": "cg", "M": "ssor", "tune": {"option": "omega", "seed": 3}}, "unknown key"),
        (
            {
                "method": "cg",
                "M": "ssor",
                "tune": {"option": "omega", "context": "diagonal-contrast"},
            },
            "contextual",
        ),
        (
            {
                "method": "cg",
                "M": "ssor",
                "tune": {"option": "omega", "tuner": "chebcb", "context": "norm"},
            },
            "tune context",
        ),
        (
            {
                "method": "cg",
                "M": "ssor",
                "tune": {
                    "option": "omega",
                    "tuner": "chebcb",
                    "context": "parameter-std:coefficient",
                },
            },
            "context_range",
        ),
        ({"method": "cg", "M": "ssor", "tune": {"option": "omega", "scale": "median"}}, "scale"),
    ],
)
def test_bad_tune_configuration(solver, message):
    with pytest.raises(ValueError, match=message):
        resolve_solver_config(solver, spd=True)


@pytest.mark.parametrize(
    "bound, expected",
    [
        (40, [5, 10, 15, 20, 25, 30]),
        (16, [2, 4, 6, 8, 10, 12]),
        (8, [1, 2, 3, 4, 5, 6]),
        (4, [1, 2, 3]),
        (2, [1]),
    ],
)
@pytest.mark.parametrize("method, option", [("gcrodr", "restart"), ("rcg", "ell")])
def test_default_k_grid_starts_at_the_bound_over_8_without_0(bound, expected, method, option):
    tune = resolve_solver_config({"method": method, option: bound, "tune": "k"}, spd=True)["tune"]
    assert tune["values"] == expected and 0 not in tune["values"]


@pytest.mark.parametrize("method", ["gcrodr", "rcg"])
def test_default_k_grid_of_the_default_configuration(method):
    # GCRO-DR: restart = 40; rcg: ell = None, that is max(2k, 30) = 40 at the default k = 20.
    tune = resolve_solver_config({"method": method, "tune": "k"}, spd=True)["tune"]
    assert tune["values"] == [5, 10, 15, 20, 25, 30]


@pytest.mark.parametrize("tune", [
    {"option": "k", "values": [0, 5, 10]},
    {"option": "k", "values": [10, 0.0]},
    {"option": "k", "tuner": "fixed", "value": 0},
])
@pytest.mark.parametrize("method", ["rcg", "gcrodr"])
def test_k_zero_is_refused_because_it_discards_the_recycled_space(tune, method):
    with pytest.raises(ValueError, match="must not contain 0.*discards its recycled space"):
        resolve_solver_config({"method": method, "tune": tune}, spd=True)


@pytest.mark.parametrize("method, option", [("gcrodr", "restart"), ("rcg", "ell")])
def test_k_tuning_needs_room_for_k_at_least_1(method, option):
    with pytest.raises(ValueError, match=f"{option} >= 2"):
        resolve_solver_config({"method": method, option: 1, "tune": "k"}, spd=True)


def test_fixed_tuner_takes_one_value(tmp_path, capsys):
    with pytest.raises(ValueError, match=r"tuner 'fixed' takes one value, got 2: \[1.2, 1.5\]"):
        resolve_solver_config(
            {
                "method": "cg",
                "M": "ssor",
                "tune": {"option": "omega", "tuner": "fixed", "value": [1.2, 1.5]},
            },
            spd=True,
        )
    capsys.readouterr()
    code = cli_generate(
        [
            "darcy", "--n", "2", "--resolution", "8", "--out", str(tmp_path / "f.h5"),
            "--no-progress", "--solver", "independent", "--pc", "ssor", "--tune", "omega",
            "--tuner", "fixed", "--tune-values", "1.2,1.5",
        ]
    )
    error = capsys.readouterr().err
    assert code == 1 and "the fixed tuner takes one value, got 2" in error and "(0, 2)" not in error
    assert not (tmp_path / "f.h5").exists()


def test_bad_context_parameter_is_named_at_the_first_solve(tmp_path):
    tune = {
        "option": "omega",
        "tuner": "chebcb",
        "context": "parameter-mean:porosity",
        "context_range": [0, 1],
    }
    with pytest.raises(ValueError, match="porosity"):
        _generate(_darcy(8), 2, tmp_path / "b.h5", {"method": "cg", "M": "ssor", "tune": tune})


def test_cli_tune(tmp_path, capsys):
    out = tmp_path / "cli.h5"
    code = cli_generate(
        [
            "darcy", "--n", "4", "--resolution", "8", "--out", str(out), "--no-progress",
            "--solver", "independent", "--pc", "ssor", "--tune", "omega",
        ]
    )
    assert code == 0
    with open_dataset(out) as handle:
        config = json.loads(handle.attrs["solver_config"])
        assert config["method"] == "cg" and config["tune"]["tuner"] == "tsallis"
        assert handle["solver/omega"].shape == (4,)
    out_k = tmp_path / "cli_k.h5"
    code = cli_generate(
        [
            "darcy", "--n", "2", "--resolution", "8", "--out", str(out_k), "--no-progress",
            "--tune", "k", "--tuner", "fixed", "--tune-values", "8",
        ]
    )
    assert code == 0
    with open_dataset(out_k) as handle:
        assert np.all(handle["solver/k"][()] == 8)
        assert json.loads(handle.attrs["solver_config"])["tune"]["values"] == [8]
    capsys.readouterr()
    assert cli_generate(["darcy", "--n", "2", "--out", str(tmp_path / "z.h5"), "--no-progress",
                         "--tune", "omega"]) == 1  # rcg without an SOR/SSOR preconditioner
    assert "'omega' needs M" in capsys.readouterr().err
    assert cli_generate(["darcy", "--n", "2", "--out", str(tmp_path / "z.h5"), "--no-progress",
                         "--tuner", "chebcb"]) == 1
    assert "--tune" in capsys.readouterr().err
