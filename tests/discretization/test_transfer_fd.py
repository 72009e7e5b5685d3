"""Grid transfer: multilinear prolongation, full-weighting restriction, coarsen/refine."""

from __future__ import annotations

import numpy as np
import pytest

from pdesuite.discretization.fd import diffusion
from pdesuite.discretization.grid import Grid
from pdesuite.discretization.transfer import coarsen, prolongation, refine, restriction


def test_refine_and_coarsen_are_inverse():
    coarse = Grid((5, 9), [(0, 2), (-1, 1)])
    fine = refine(coarse)
    assert fine.shape == (9, 17) and fine.bounds == coarse.bounds
    assert fine.spacing == pytest.approx(tuple(h / 2 for h in coarse.spacing))
    assert coarsen(fine) == coarse
    cells = Grid((4, 6), centering="cell")
    assert refine(cells).shape == (8, 12) and coarsen(refine(cells)) == cells


def test_prolongation_reproduces_bilinear_functions_2d():
    coarse = Grid((5, 4), [(0, 2), (-1, 1)])
    fine = refine(coarse)

    def bilinear(p):
        return 1.5 + 2 * p[:, 0] - p[:, 1] + 3 * p[:, 0] * p[:, 1]

    P = prolongation(coarse, fine)
    assert P.shape == (fine.size, coarse.size)
    np.testing.assert_allclose(
        P @ bilinear(coarse.points()), bilinear(fine.points()), rtol=0, atol=1e-13
    )
    # quadratics are not reproduced: the midpoint error of x² is h²/4
    quadratic = P @ (coarse.points()[:, 0] ** 2)
    assert np.abs(quadratic - fine.points()[:, 0] ** 2).max() == pytest.approx(
        coarse.spacing[0] ** 2 / 4
    )


def test_prolongation_reproduces_trilinear_functions_3d():
    coarse = Grid((3, 4, 5))
    fine = refine(coarse)

    def trilinear(p):
        x, y, z = p.T
        return 1 - x + 2 * y + 0.5 * z + x * y - 3 * y * z + 4 * x * y * z

    P = prolongation(coarse, fine)
    np.testing.assert_allclose(
        P @ trilinear(coarse.points()), trilinear(fine.points()), rtol=0, atol=1e-13
    )
    np.testing.assert_allclose(P.sum(axis=1), 1.0)  # row sums: interpolation weights add to 1


def test_interior_only_is_the_free_block_of_the_full_prolongation():
    coarse = Grid((5, 6))
    fine = refine(coarse)
    P = prolongation(coarse, fine)
    P_free = prolongation(coarse, fine, interior_only=True)
    assert P_free.shape == ((9 - 2) * (11 - 2), (5 - 2) * (6 - 2))
    fine_free = diffusion(fine, 1.0).free
    coarse_free = diffusion(coarse, 1.0).free
    np.testing.assert_array_equal(P_free.toarray(), P.toarray()[np.ix_(fine_free, coarse_free)])


def test_restriction_is_scaled_transpose_with_full_weighting_stencil():
    coarse = Grid((4, 5))
    fine = refine(coarse)
    P = prolongation(coarse, fine)
    R = restriction(coarse, fine)
    np.testing.assert_array_equal(R.toarray(), 0.25 * P.T.toarray())
    # interior coarse node (1, 2) sits at fine (2, 4): weights 1/16 [1 2 1; 2 4 2; 1 2 1]
    row = R.toarray()[np.ravel_multi_index((1, 2), coarse.shape)].reshape(fine.shape)
    stencil = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]]) / 16
    np.testing.assert_array_equal(row[1:4, 3:6], stencil)
    assert row.sum() == 1.0
    # row sums: 1 inside, times 3/4 per side the coarse node lies on (1D stencil cut to [1/2, 1/4])
    sums = R.sum(axis=1).reshape(coarse.shape)
    assert sums[1, 1] == 1.0 and sums[0, 2] == 0.75 and sums[0, 0] == 0.75**2
    R3 = restriction(Grid((3, 3, 3)), Grid((5, 5, 5)), interior_only=True)
    np.testing.assert_array_equal(
        R3.toarray(), 0.125 * prolongation(Grid((3, 3, 3)), Grid((5, 5, 5)), True).T.toarray()
    )
    assert R3.sum() == pytest.approx(1.0)


def test_galerkin_coarse_operator_in_1d_is_the_coarse_laplacian():
    coarse = Grid(9, (0, 3))
    fine = refine(coarse)
    A_fine = diffusion(fine, 1.0).A
    A_coarse = diffusion(coarse, 1.0).A
    P = prolongation(coarse, fine, interior_only=True)
    R = restriction(coarse, fine, interior_only=True)
    np.testing.assert_allclose((R @ A_fine @ P).toarray(), A_coarse.toarray(), rtol=1e-13)


def test_two_grid_correction_reduces_error():
    # R A_h P as coarse operator: an exact coarse correction after smoothing must cut the error.
    rng = np.random.default_rng(0)
    coarse = Grid((9, 9))
    fine = refine(coarse)
    coefficient = np.exp(0.5 * rng.standard_normal(fine.shape))
    A = diffusion(fine, coefficient).A.toarray()
    P = prolongation(coarse, fine, interior_only=True).toarray()
    R = restriction(coarse, fine, interior_only=True).toarray()
    A_coarse = R @ A @ P
    error = rng.standard_normal(A.shape[0])
    diagonal = np.diag(A)
    for _ in range(3):  # weighted Jacobi, ω = 2/3
        error = error - (2 / 3) * (A @ error) / diagonal
    energy_before = error @ A @ error
    error = error - P @ np.linalg.solve(A_coarse, R @ (A @ error))
    for _ in range(3):
        error = error - (2 / 3) * (A @ error) / diagonal
    assert error @ A @ error < 0.1 * energy_before


def test_indices_are_int32():
    P = prolongation(Grid((5, 5)), Grid((9, 9)))
    R = restriction(Grid((5, 5)), Grid((9, 9)))
    for matrix in (P, R):
        assert matrix.indices.dtype == np.int32 and matrix.indptr.dtype == np.int32


def test_bad_transfer_inputs():
    with pytest.raises(ValueError, match="fine_grid.*nested"):
        prolongation(Grid((5, 5)), Grid((10, 9)))
    with pytest.raises(ValueError, match="fine_grid.*bounds"):
        prolongation(Grid((5, 5)), Grid((9, 9), (0, 2)))
    with pytest.raises(ValueError, match="fine_grid.*axes"):
        prolongation(Grid((5, 5)), Grid(9))
    with pytest.raises(ValueError, match="coarse_grid.*node-centred"):
        restriction(Grid((4, 4), centering="cell"), Grid((8, 8), centering="cell"))
    with pytest.raises(TypeError, match="coarse_grid"):
        prolongation((5, 5), Grid((9, 9)))
    with pytest.raises(ValueError, match="grid.*odd"):
        coarsen(Grid((6, 5)))
    with pytest.raises(ValueError, match="grid.*even"):
        coarsen(Grid((3, 4), centering="cell"))
