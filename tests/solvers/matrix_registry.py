"""Test matrices for the solvers, in the manner of SciPy's own solver tests.

Each case names the methods it suits; for the others the expected outcome is a reason, not a
silent wrong x. Built with NumPy/SciPy only, so that the solver tests stand apart from the
discretization layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp


@dataclass
class Case:
    name: str
    A: sp.csr_array
    b: np.ndarray
    spd: bool = False
    symmetric: bool = False
    tags: set[str] = field(default_factory=set)


def laplacian_1d(n: int) -> sp.csr_array:
    return sp.csr_array(sp.diags_array([-1.0, 2.0, -1.0], offsets=[-1, 0, 1], shape=(n, n)))


def laplacian_2d(m: int) -> sp.csr_array:
    """Dirichlet 5-point Laplacian on an m×m interior grid (unscaled), n = m²."""
    T = laplacian_1d(m)
    eye = sp.eye_array(m)
    return sp.csr_array(sp.kron(T, eye) + sp.kron(eye, T))


def variable_diffusion_2d(m: int, seed: int = 0, contrast: float = 1.0) -> sp.csr_array:
    """−∇·(a∇u), 5-point, zero Dirichlet, a = exp(contrast·smooth field), harmonic face means."""
    rng = np.random.default_rng(seed)
    s = m + 2
    x = np.linspace(0, 1, s)
    X, Y = np.meshgrid(x, x, indexing="ij")
    field_ = sum(
        rng.normal() * np.sin((i + 1) * np.pi * X) * np.sin((j + 1) * np.pi * Y) / (1 + i + j) ** 2
        for i in range(4)
        for j in range(4)
    )
    a = np.exp(contrast * field_)
    ax = 2 * a[1:, :] * a[:-1, :] / (a[1:, :] + a[:-1, :])  # faces between i and i+1
    ay = 2 * a[:, 1:] * a[:, :-1] / (a[:, 1:] + a[:, :-1])
    idx = -np.ones((s, s), dtype=np.int64)
    idx[1:-1, 1:-1] = np.arange(m * m).reshape(m, m)
    rows, cols, vals = [], [], []
    diag = np.zeros((s, s))
    # east/west faces
    sl = slice(1, -1)
    for shift, face in ((1, ax), (-1, ax)):
        i = np.arange(1, s - 1)[:, None] * np.ones((1, m), dtype=int)
        j = np.arange(1, s - 1)[None, :] * np.ones((m, 1), dtype=int)
        f = face[i if shift == 1 else i - 1, j]
        diag[sl, sl] += f
        nb = idx[i + shift, j]
        mask = nb >= 0
        rows.append(idx[i, j][mask])
        cols.append(nb[mask])
        vals.append(-f[mask])
    for shift, face in ((1, ay), (-1, ay)):
        i = np.arange(1, s - 1)[:, None] * np.ones((1, m), dtype=int)
        j = np.arange(1, s - 1)[None, :] * np.ones((m, 1), dtype=int)
        f = face[i, j if shift == 1 else j - 1]
        diag[1:-1, 1:-1] += f
        nb = idx[i, j + shift]
        mask = nb >= 0
        rows.append(idx[i, j][mask])
        cols.append(nb[mask])
        vals.append(-f[mask])
    rows.append(np.arange(m * m))
    cols.append(np.arange(m * m))
    vals.append(diag[1:-1, 1:-1].ravel())
    A = sp.coo_array(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(m * m, m * m)
    )
    return sp.csr_array(A)


def advection_diffusion_2d(m: int, peclet: float = 20.0) -> sp.csr_array:
    """−Δu + Pe·(1,1)·∇u with upwind differences (h-scaled), non-symmetric, diagonally dominant."""
    h = 1.0 / (m + 1)
    T = laplacian_1d(m) / h**2
    D = sp.csr_array(sp.diags_array([-1.0, 1.0], offsets=[-1, 0], shape=(m, m))) / h
    eye = sp.eye_array(m)
    return sp.csr_array(
        sp.kron(T, eye) + sp.kron(eye, T) + peclet * (sp.kron(D, eye) + sp.kron(eye, D))
    )


def helmholtz_2d(m: int, k: float) -> sp.csr_array:
    """−Δu − k²u, 5-point with h², zero Dirichlet: symmetric indefinite for k above the first
    mode."""
    h = 1.0 / (m + 1)
    return sp.csr_array(laplacian_2d(m) / h**2 - k**2 * sp.eye_array(m * m))


def registry(seed: int = 1234) -> list[Case]:
    rng = np.random.default_rng(seed)

    def rhs(n: int, dtype=float) -> np.ndarray:
        v = rng.standard_normal(n)
        if np.dtype(dtype).kind == "c":
            v = v + 1j * rng.standard_normal(n)
        return v.astype(dtype)

    cases = [
        Case("poisson1d", laplacian_1d(50), rhs(50), spd=True, symmetric=True),
        Case("poisson2d", laplacian_2d(16), rhs(256), spd=True, symmetric=True),
        Case(
            "diffusion2d",
            variable_diffusion_2d(16, seed=seed, contrast=1.5),
            rhs(256),
            spd=True,
            symmetric=True,
        ),
        Case("advdiff2d", advection_diffusion_2d(16), rhs(256), tags={"nonsymmetric"}),
        Case("helmholtz2d", helmholtz_2d(16, k=7.0), rhs(256), symmetric=True, tags={"indefinite"}),
    ]
    A = laplacian_2d(12).astype(complex) + 0.5j * sp.eye_array(144)
    cases.append(
        Case(
            "complex_shifted", sp.csr_array(A), rhs(144, complex), tags={"complex", "nonhermitian"}
        )
    )
    cases.append(Case("poisson2d_float32", laplacian_2d(12).astype(np.float32),
                      rhs(144, np.float32), spd=True, symmetric=True, tags={"float32"}))
    # Singular but consistent: pure-Neumann 1D Laplacian, b orthogonal to constants.
    n = 40
    N = laplacian_1d(n).tolil()
    N[0, 0] = 1.0
    N[n - 1, n - 1] = 1.0
    bN = rhs(n)
    bN -= bN.mean()
    cases.append(
        Case("singular_consistent", sp.csr_array(N), bN, symmetric=True, tags={"singular"})
    )
    return cases


def breakdown_case() -> Case:
    """A x = b for which BiCGStab's first step divides by zero: A is a rotation, b = e1.

    With r0 = b and the shadow residual r̂ = r0, ⟨r̂, A r0⟩ = 0 so α = ρ/⟨r̂, A p⟩ breaks down.
    """
    A = sp.csr_array(np.array([[0.0, 1.0], [-1.0, 0.0]]))
    return Case("rotation_breakdown", A, np.array([1.0, 0.0]), tags={"breakdown"})
