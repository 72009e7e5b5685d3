"""Training a preconditioner on a generated file: the systems read back, the supervised pairs and
loss, and both kinds of training."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse.linalg as spla

pytest.importorskip("torch")

import torch  # noqa: E402  (after the skip)

from pdesuite.datasets import generate  # noqa: E402
from pdesuite.datasets.loaders import read_systems  # noqa: E402
from pdesuite.operators.preconditioning import (  # noqa: E402
    energy_error_loss,
    load_preconditioner,
    residual_error_pairs,
    train_preconditioner_on_file,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def darcy_file(tmp_path_factory):
    return generate("darcy", 4, out=tmp_path_factory.mktemp("data") / "darcy.h5", resolution=12,
                    seed=3, solver="direct", progress=False)


def test_the_systems_of_a_file_are_its_samples_reassembled(darcy_file):
    family, systems = read_systems(darcy_file)
    assert [s.index for s in systems] == [0, 1, 2, 3]
    for sample in systems:
        params = family.sample(np.random.default_rng([3, sample.index]))
        again = family.assemble(params)
        assert (sample.system.A != again.A).nnz == 0
        np.testing.assert_array_equal(sample.system.b, again.b)
        np.testing.assert_array_equal(sample.inputs, family.inputs(params))
        exact = spla.spsolve(again.A.tocsc(), again.b)
        # the stored solution is float32
        np.testing.assert_allclose(sample.solution, exact, rtol=1e-6, atol=1e-6 * abs(exact).max())
    assert [s.index for s in read_systems(darcy_file, samples=[2])[1]] == [2]
    with pytest.raises(ValueError, match="samples: index 9"):
        read_systems(darcy_file, samples=[9])


def test_a_time_dependent_file_has_no_systems(tmp_path):
    path = generate("heat", 2, out=tmp_path / "heat.h5", resolution=8, progress=False)
    with pytest.raises(ValueError, match="time-dependent"):
        read_systems(path)


def test_residual_error_pairs_follow_cg_and_satisfy_a_e_equals_r(darcy_file):
    _, systems = read_systems(darcy_file)
    pairs = residual_error_pairs(systems[:2], per_system=5)
    assert pairs.residuals.shape == (10, systems[0].system.n_free)
    np.testing.assert_array_equal(pairs.owner, [0] * 5 + [1] * 5)
    for r, e, k in zip(pairs.residuals, pairs.errors, pairs.owner):
        A = systems[k].system.A
        # e = u - x with u stored in float32: A e = r to that precision
        assert np.linalg.norm(A @ e - r) <= 1e-5 * np.linalg.norm(systems[k].system.b)
    first = pairs.residuals[0]
    np.testing.assert_array_equal(first, systems[0].system.b)  # x_0 = 0
    # CG decreases the A-norm of the error, eᵀAe = eᵀr, at every step
    energy = np.einsum("ij,ij->i", pairs.errors[:5], pairs.residuals[:5])
    assert np.all(np.diff(energy) < 0), energy


def test_the_energy_error_loss_is_zero_along_the_error_and_one_across_it():
    rng = np.random.default_rng(0)
    B = rng.standard_normal((6, 6))
    A = torch.as_tensor(B @ B.T + 6 * np.eye(6))
    e = torch.as_tensor(rng.standard_normal((6, 2)))
    r = A @ e
    assert torch.allclose(energy_error_loss(A, -3.0 * e, r, e), torch.tensor(0.0, dtype=A.dtype),
                          atol=1e-12)
    # q A-orthogonal to e: no progress at all
    q = torch.as_tensor(rng.standard_normal((6, 2)))
    q = q - e * (q * r).sum(0) / (e * r).sum(0)
    np.testing.assert_allclose(energy_error_loss(A, q, r, e, reduction="none").numpy(), 1.0,
                               atol=1e-12)
    # between: the relative A-norm error of the best multiple of q
    q = torch.as_tensor(rng.standard_normal((6, 1)))
    alpha = float((q * r[:, :1]).sum() / (q * (A @ q)).sum())
    left = e[:, :1] - alpha * q
    expected = float((left * (A @ left)).sum() / (e[:, :1] * r[:, :1]).sum())
    assert float(energy_error_loss(A, q, r[:, :1], e[:, :1])) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("supervised", [False, True])
def test_training_on_a_file_gives_a_run_that_preconditions_its_family(darcy_file, tmp_path,
                                                                     supervised):
    run = train_preconditioner_on_file(darcy_file, supervised=supervised, pairs_per_sample=6,
                                       model={"width": 4}, epochs=2, rhs_per_matrix=6,
                                       ritz_steps=20, out_dir=tmp_path / "pc", progress=False,
                                       device="cpu", seed=1)
    assert run.model.in_channels == 2 and run.model.conditioning_transform == "log"
    assert len(run.history) == 2 and np.isfinite(run.history[-1]["loss"])
    _, systems = read_systems(darcy_file, samples=[0])
    M = load_preconditioner(tmp_path / "pc", coefficient=systems[0].inputs[0])
    z = M.apply(systems[0].system.b)
    assert z.shape == systems[0].system.b.shape and np.all(np.isfinite(z))
    with pytest.raises(ValueError, match="come from the file"):
        train_preconditioner_on_file(darcy_file, coefficients=[1.0])


def test_pdesuite_train_dcdm_trains_resumes_and_refuses_what_does_not_apply(darcy_file,
                                                                            tmp_path, capsys):
    from pdesuite.cli import main

    out = tmp_path / "pc"
    base = ["train", "dcdm", "--data", str(darcy_file), "--out", str(out), "--no-progress",
            "--model-arg", "width=4", "--device", "cpu"]
    assert main(base + ["--epochs", "1"]) == 0
    assert "1 epochs" in capsys.readouterr().out
    assert main(base + ["--epochs", "1"]) == 1  # a run is there: never replaced silently
    assert "--resume continues it" in capsys.readouterr().err
    assert main(base + ["--epochs", "2", "--resume"]) == 0
    assert "2 epochs" in capsys.readouterr().out
    assert main(base + ["--loss", "h1"]) == 1
    assert "not an option of a preconditioner run: --loss" in capsys.readouterr().err
    assert main(["train", "fno", "--data", str(darcy_file), "--supervised"]) == 1
    assert "--supervised applies to dcdm only" in capsys.readouterr().err
