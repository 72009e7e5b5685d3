"""Dataset generation with ``solver="direct"``: one DirectSolver per block."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from pdesuite.datasets.pde_family import get_family
from pdesuite.datasets.generation import cli_generate, generate, resolve_solver_config
from pdesuite.datasets.generation.blocks import make_solver
from pdesuite.datasets.storage import open_dataset
from pdesuite.solvers.direct import cholmod_available
from tests.datasets.test_generate import TinyHeat, _arrays, _assert_bitwise_equal


def _darcy():
    return get_family("darcy", resolution=14)


def test_direct_configuration_is_resolved_and_recorded(tmp_path):
    expected = "cholmod" if cholmod_available() else "superlu"
    for solver in ("direct", {"method": "direct"}, {"method": "DIRECT", "rtol": 1e-10}):
        config = resolve_solver_config(solver, spd=True)
        assert (config["mode"], config["method"], config["M"], config["spd"]) == (
            "direct",
            "direct",
            None,
            True,
        )
        assert config["factorization"] == expected and config["ordering"] == "default"
        assert config["options"] == {}
    assert resolve_solver_config({"method": "direct", "rtol": 1e-10}, spd=True)["rtol"] == 1e-10
    lu = resolve_solver_config("direct", spd=False)
    assert lu["spd"] is False and lu["factorization"] == "superlu"
    assert resolve_solver_config({"method": "direct", "spd": None}, spd=False)["spd"] is None
    path = generate(_darcy(), 4, tmp_path / "d.h5", solver="direct", progress=False)
    with open_dataset(path) as handle:
        recorded = json.loads(handle.attrs["solver_config"])
    assert recorded == resolve_solver_config("direct", spd=True)


def test_direct_configuration_errors():
    with pytest.raises(ValueError, match="no preconditioner"):
        resolve_solver_config({"method": "direct", "M": "ilu"}, spd=True)
    with pytest.raises(ValueError, match="nothing to tune|no option to tune"):
        resolve_solver_config({"method": "direct", "tune": "omega"}, spd=True)
    with pytest.raises(ValueError, match="recorded, not chosen"):
        resolve_solver_config({"method": "direct", "factorization": "superlu"}, spd=True)
    with pytest.raises(ValueError, match="unknown option.*restart"):
        resolve_solver_config({"method": "direct", "restart": 10}, spd=True)
    with pytest.raises(ValueError, match="ordering"):
        resolve_solver_config({"method": "direct", "ordering": "rcm"}, spd=True)
    with pytest.raises(ValueError, match="spd"):
        resolve_solver_config({"method": "direct", "spd": "yes"}, spd=True)
    with pytest.raises(ValueError, match="'direct' runs on the 'numpy' backend"):
        generate(_darcy(), 2, "unused.h5", solver="direct", backend="petsc", progress=False)


def test_direct_generation_is_deterministic_for_any_worker_count(tmp_path):
    family = _darcy()
    one = generate(family, 9, tmp_path / "one.h5", solver="direct", chunk_size=4, progress=False)
    two = generate(family, 9, tmp_path / "two.h5", solver="direct", chunk_size=4, workers=2,
                   progress=False)
    again = generate(
        family, 9, tmp_path / "again.h5", solver="direct", chunk_size=4, progress=False
    )
    _assert_bitwise_equal(_arrays(one), _arrays(two))
    _assert_bitwise_equal(_arrays(one), _arrays(again))
    arrays = _arrays(one)
    assert arrays["solver/converged"].all() and np.all(arrays["solver/residual"] <= 1e-12)
    assert np.all(arrays["solver/iterations"] == 1) and np.all(arrays["solver/matvecs"] == 1)


def test_direct_equals_the_iterative_solution(tmp_path):
    family = _darcy()
    direct = _arrays(generate(family, 6, tmp_path / "direct.h5", solver="direct", progress=False))
    iterative = _arrays(generate(family, 6, tmp_path / "cg.h5", progress=False,
                                 solver={"method": "cg", "M": "ic", "rtol": 1e-13}))
    assert np.array_equal(direct["inputs"], iterative["inputs"])
    # Stored float32: equal up to one rounding of each.
    np.testing.assert_allclose(direct["outputs"], iterative["outputs"], rtol=3e-7, atol=1e-12)
    # The float64 solutions of the very solvers generation builds: 1e-8 relative.
    direct_solve = make_solver(resolve_solver_config("direct", spd=True), "numpy")
    cg_solve = make_solver(
        resolve_solver_config({"method": "cg", "M": "ic", "rtol": 1e-13}, spd=True), "numpy"
    )
    for index in range(6):
        system = family.assemble(family.sample(np.random.default_rng([0, index])))
        x, y = direct_solve(system.A, system.b).x, cg_solve(system.A, system.b).x
        assert np.linalg.norm(x - y) <= 1e-8 * np.linalg.norm(y)


def test_direct_time_dependent_family_reuses_the_factor(tmp_path):
    path = generate(TinyHeat(6), 3, tmp_path / "heat.h5", solver="direct", progress=False)
    arrays = _arrays(path)
    reference = _arrays(generate(TinyHeat(6), 3, tmp_path / "heat_cg.h5", progress=False,
                                 solver={"method": "cg", "rtol": 1e-13}))
    np.testing.assert_allclose(
        arrays["trajectories"], reference["trajectories"], rtol=3e-7, atol=1e-12
    )
    assert arrays["solver/converged"].all() and np.all(arrays["solver/steps"] == 3)
    # A warm start x0 = u: a correction, so two products per step.
    assert np.all(arrays["solver/matvecs"] == 6)
    solve = make_solver(resolve_solver_config("direct", spd=True), "numpy")
    family = TinyHeat(6)
    first, second = solve(family.step, np.ones(16)), solve(family.step, np.ones(16))
    assert first.info["numeric_reused"] is False
    assert second.info["numeric_reused"] is cholmod_available()


def test_direct_without_scikit_sparse(tmp_path, monkeypatch):
    here = resolve_solver_config("direct", spd=True)
    monkeypatch.setitem(sys.modules, "sksparse", None)
    monkeypatch.setitem(sys.modules, "sksparse.cholmod", None)
    assert resolve_solver_config("direct", spd=True)["factorization"] == "superlu"
    path = generate(_darcy(), 3, tmp_path / "lu.h5", solver="direct", progress=False)
    assert _arrays(path)["solver/converged"].all()
    if here["factorization"] == "cholmod":
        # A run configured for CHOLMOD refuses to go on without it, rather than mix libraries.
        with pytest.raises(RuntimeError, match="scikit-sparse does not import"):
            make_solver(here, "numpy")


def test_cli_solver_direct(tmp_path, capsys):
    out = tmp_path / "cli.h5"
    assert cli_generate(["darcy", "--n", "3", "--resolution", "10", "--out", str(out),
                         "--no-progress", "--solver", "direct", "--rtol", "1e-10"]) == 0
    assert "3 samples" in capsys.readouterr().out
    with open_dataset(out) as handle:
        config = json.loads(handle.attrs["solver_config"])
    assert config["mode"] == "direct" and config["rtol"] == 1e-10


def test_auto_rule_picks_direct_in_2d_and_ic_cg_in_3d_and_records_it(tmp_path):
    """The rule of benchmarks/bench_crossover.py, taken by runs too small to probe: direct for
    2-D families, IC(0)-CG for 3-D SPD ones; the choice lands in the file's configuration."""
    import json

    import h5py

    from pdesuite.datasets import generate, get_family
    from pdesuite.datasets.generation.solver_choice import MIN_PROBED_SAMPLES, rule_choice

    assert rule_choice(get_family("darcy", resolution=12)) == "direct"
    assert rule_choice(get_family("poisson-fe", resolution=3)) == "direct"
    assert rule_choice(get_family("darcy-3d", resolution=6)) == {"method": "cg", "M": "ic"}
    assert rule_choice(get_family("heat", resolution=9)) == "recycle"
    assert rule_choice(get_family("darcy", resolution=12), backend="petsc") == {
        "method": "cg",
        "M": "ic",
    }
    for name, resolution, mode, method in (("darcy", 12, "direct", "direct"),
                                           ("darcy-3d", 6, "independent", "cg")):
        path = generate(name, MIN_PROBED_SAMPLES - 1, out=tmp_path / f"{name}.h5", seed=3,
                        resolution=resolution, progress=False)
        with h5py.File(path, "r") as f:
            config = json.loads(f.attrs["solver_config"])
        assert config["chosen_by"] == "rule"
        assert (config["mode"], config["method"]) == (mode, method)
        if name == "darcy-3d":
            assert config["M"] == "ic"
