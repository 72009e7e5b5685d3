"""``generate`` with a trained preconditioner as ``M``: the loop from data back into the solver.

A DCDM network is trained briefly on four Darcy systems at 16² (one module fixture, about 5 s on
one CPU thread); the tests generate with it and compare against the direct path and against
solving the same samples by hand with ``load_preconditioner``.
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest

pytest.importorskip("torch")

from pdesuite.datasets import generate  # noqa: E402  (after the skip: the module needs torch)
from pdesuite.datasets.pde_family import get_family  # noqa: E402
from pdesuite.operators import load_preconditioner, train_preconditioner  # noqa: E402
from pdesuite.solvers import solve  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

RESOLUTION = 16


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    family = get_family("darcy", resolution=RESOLUTION)
    params = [family.sample(np.random.default_rng([99, i])) for i in range(4)]
    run = tmp_path_factory.mktemp("learned") / "pc"
    train_preconditioner([family.assemble(p).A for p in params], family.grid.shape,
                         coefficients=[p["coefficient"] for p in params], model={"width": 8},
                         epochs=8, rhs_per_matrix=40, ritz_steps=100, lr=3e-3, out_dir=run,
                         progress=False, device="cpu")
    return run


def _read(path):
    with h5py.File(path, "r") as f:
        return f["outputs"][:], {key: f["solver"][key][:] for key in f["solver"]}


def test_generating_with_a_trained_run_matches_the_direct_path_and_a_solve_by_hand(
        run_dir, tmp_path):
    learned = generate("darcy", 3, out=tmp_path / "learned.h5", resolution=RESOLUTION, seed=0,
                       solver={"method": "fcg", "M": str(run_dir)}, progress=False)
    direct = generate("darcy", 3, out=tmp_path / "direct.h5", resolution=RESOLUTION, seed=0,
                      solver="direct", progress=False)
    outputs, stats = _read(learned)
    reference, _ = _read(direct)
    assert stats["converged"].all()
    np.testing.assert_allclose(outputs, reference, rtol=0, atol=1e-6 * np.abs(reference).max())

    # The same samples solved by hand with the one-line loader take the same iterations.
    family = get_family("darcy", resolution=RESOLUTION)
    with h5py.File(learned, "r") as f:
        order = f["solve_order"][:] if "solve_order" in f else np.arange(3)
    by_hand = []
    for index in range(3):
        params = family.sample(np.random.default_rng([0, index]))
        system = family.assemble(params)
        M = load_preconditioner(run_dir, coefficient=params["coefficient"])
        by_hand.append(solve(system.A, system.b, method="fcg", M=M).iterations)
    assert sorted(stats["iterations"].tolist()) == sorted(by_hand), (order, by_hand)
    # and far fewer than plain CG's.
    cg = generate("darcy", 3, out=tmp_path / "cg.h5", resolution=RESOLUTION, seed=0,
                  solver={"method": "cg"}, progress=False)
    assert stats["iterations"].mean() < 0.7 * _read(cg)[1]["iterations"].mean()


def test_a_run_given_to_a_method_that_needs_a_linear_preconditioner_is_refused(run_dir, tmp_path):
    with pytest.raises(ValueError, match="nonlinear; use it with method 'fcg'"):
        generate("darcy", 2, out=tmp_path / "x.h5", resolution=RESOLUTION,
                 solver={"method": "cg", "M": str(run_dir)}, progress=False)
    assert not (tmp_path / "x.h5").exists()


def test_a_path_that_is_no_run_is_refused_by_name(tmp_path):
    with pytest.raises(ValueError, match="'nowhere/pc' is neither a preconditioner name"):
        generate("darcy", 2, out=tmp_path / "x.h5", resolution=RESOLUTION,
                 solver={"method": "fcg", "M": "nowhere/pc"}, progress=False)


def test_a_network_of_another_dimension_is_refused_before_anything_is_written(run_dir, tmp_path):
    with pytest.raises(ValueError, match="model: "):
        generate("darcy-3d", 2, out=tmp_path / "x.h5", resolution=8,
                 solver={"method": "fcg", "M": str(run_dir)}, progress=False)
    assert not (tmp_path / "x.h5").exists()
    assert not (tmp_path / "x.h5.parts").exists()


def test_a_network_retrained_in_the_same_directory_is_another_run(run_dir, tmp_path):
    copy = tmp_path / "pc"
    copy.mkdir()
    (copy / "checkpoint.pt").write_bytes((run_dir / "checkpoint.pt").read_bytes())
    out = tmp_path / "learned.h5"
    solver = {"method": "fcg", "M": str(copy)}
    generate("darcy", 2, out=out, resolution=RESOLUTION, seed=0, solver=solver, progress=False)
    assert generate("darcy", 2, out=out, resolution=RESOLUTION, seed=0, solver=solver,
                    progress=False) == out  # the same run: nothing to do
    family = get_family("darcy", resolution=RESOLUTION)
    train_preconditioner(family.assemble(family.sample(np.random.default_rng(1))).A,
                         family.grid.shape, model={"width": 4}, epochs=1, rhs_per_matrix=4,
                         ritz_steps=10, out_dir=copy, progress=False, device="cpu")
    with pytest.raises(ValueError, match="holds another dataset"):
        generate("darcy", 2, out=out, resolution=RESOLUTION, seed=0, solver=solver,
                 progress=False)
