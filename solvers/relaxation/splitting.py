"""The SOR splitting of a CSR matrix (triangular sweeps), red–black ordering, and the checks they
share."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import scipy.sparse as sp
import scipy.sparse.csgraph as csgraph
import scipy.sparse.linalg as spla

from pdesuite.solvers.linear_operator import as_csr
from pdesuite.solvers.validation import check_choice, check_real

KINDS = ("jacobi", "gauss-seidel", "sor", "ssor")


DIRECTIONS = ("forward", "backward", "symmetric")


ORDERINGS = ("natural", "redblack")


#: Relative size of ``A − Aᴴ`` below which A counts as Hermitian for the ``symmetric`` flag.
HERMITIAN_RTOL = 1e-13


def check_omega(omega: Any) -> float:
    return check_real("omega", omega, low=0.0, high=2.0, open_low=True, open_high=True)


def checked_diagonal(A: sp.csr_array) -> np.ndarray:
    diag = A.diagonal()
    zeros = np.flatnonzero(diag == 0)
    if zeros.size:
        raise ValueError(
            f"A: diagonal entry {int(zeros[0])} is zero ({zeros.size} zero(s) in all); "
            "relaxation divides by the diagonal"
        )
    return diag


def is_hermitian(A: sp.csr_array) -> bool:
    scale = abs(A).max() if A.nnz else 0.0
    # Fast path for a canonical CSR matrix: Aᴴ in CSR (one transposition) with the same
    # pattern leaves only the values to compare, about half the cost of forming A − Aᴴ.
    if A.has_canonical_format:
        transposed = A.T.tocsr()
        if (np.array_equal(A.indptr, transposed.indptr)
                and np.array_equal(A.indices, transposed.indices)):
            return not A.nnz or bool(np.abs(A.data - transposed.data.conj()).max()
                                     <= HERMITIAN_RTOL * scale)
    difference = A - A.conj().T
    return difference.nnz == 0 or abs(difference).max() <= HERMITIAN_RTOL * scale


def positive_real(diag: np.ndarray) -> bool:
    return bool(np.all(np.real(diag) > 0) and np.all(np.imag(diag) == 0))


def red_black_ordering(A: Any) -> tuple[np.ndarray, np.ndarray]:
    """Split the unknowns into two colours such that no off-diagonal entry joins equal colours.

    Args:
        A: ``[n, n]`` sparse or dense matrix. Its graph (of ``A + Aᵀ``, diagonal ignored) must
            be bipartite, as for the 5-point and 7-point Laplacians.

    Returns:
        ``(red, black)``: sorted index arrays partitioning ``range(n)``. The lowest index of each
        connected component is red. ``np.concatenate([red, black])`` is the red–black
        permutation.

    Raises:
        ValueError: if the graph has an odd cycle (e.g. a 9-point stencil).
    """
    matrix = as_csr(A, copy=True)
    n = matrix.shape[0]
    coo = sp.coo_array(matrix)
    off = coo.row != coo.col
    rows, cols = coo.row[off], coo.col[off]
    # A virtual node n joined to the first node of every component lets one breadth-first
    # search colour all components.
    graph = sp.coo_array((np.ones(rows.size, dtype=np.int8), (rows, cols)), shape=(n, n))
    _, labels = csgraph.connected_components(graph, directed=False)
    _, roots = np.unique(labels, return_index=True)
    graph = sp.coo_array(
        (np.ones(rows.size + roots.size, dtype=np.int8),
         (np.concatenate([rows, np.full(roots.size, n)]), np.concatenate([cols, roots]))),
        shape=(n + 1, n + 1),
    ).tocsr()
    _, predecessors = csgraph.breadth_first_order(
        graph, n, directed=False, return_predecessors=True
    )
    # Depth parity by pointer jumping: log2(depth) vectorised rounds instead of a Python loop.
    ancestor = predecessors.astype(np.int64)
    ancestor[n] = n
    parity = np.ones(n + 1, dtype=np.int8)
    parity[n] = 0
    while np.any(ancestor != n):
        parity ^= parity[ancestor]
        parity[n] = 0
        ancestor = ancestor[ancestor]
    colour = parity[:n]
    if np.any(colour[rows] == colour[cols]):
        raise ValueError(
            "A: its graph is not 2-colourable (it has an odd cycle), so ordering='redblack' "
            "does not apply; use ordering='natural'"
        )
    return np.flatnonzero(colour == 1), np.flatnonzero(colour == 0)


def _triangle(matrix: sp.csr_array, rows: np.ndarray, lower: bool,
              diagonal_factor: float) -> sp.csr_array:
    """The strict lower (or upper) triangle of a canonical CSR matrix plus its diagonal times
    ``diagonal_factor`` (left out when 0), by masking the CSR arrays in one pass."""
    columns = matrix.indices
    on_diagonal = columns == rows
    keep = columns < rows if lower else columns > rows
    if diagonal_factor != 0.0:
        keep |= on_diagonal
    data = matrix.data[keep]
    data[on_diagonal[keep]] *= diagonal_factor
    indptr = np.zeros(matrix.shape[0] + 1, dtype=matrix.indptr.dtype)
    np.cumsum(np.bincount(rows[keep], minlength=matrix.shape[0]), out=indptr[1:])
    return sp.csr_array((data, columns[keep], indptr), shape=matrix.shape)


def _triangular_factor(T: sp.csr_array) -> Any:
    """SuperLU object for a lower-triangular ``T`` whose ``solve`` is one C triangular solve.

    Natural order and ``diag_pivot_thresh=0`` keep SuperLU from permuting, so no fill occurs;
    ``relax=1, panel_size=1`` cut its set-up time by about 2.5× for such a matrix (measured).
    """
    return spla.splu(sp.csc_matrix(T), permc_spec="NATURAL", diag_pivot_thresh=0.0,
                     relax=1, panel_size=1)


class SORSplitting:
    """The SOR splitting of one matrix for one ``ω``, with fast half-sweeps.

    With ``M_f = D/ω + L``, ``N_f = U + (1 − 1/ω) D`` (forward) and ``M_b = D/ω + U``,
    ``N_b = L + (1 − 1/ω) D`` (backward), ``A = M_f + N_f = M_b + N_b``. Vectors live in the
    splitting's index space: the natural one, or for ``ordering="redblack"`` the permuted one
    (``permutation`` maps it to the original: ``x_original[permutation] = x``), see
    :meth:`to_internal` / :meth:`to_original`.

    Args:
        A: ``[n, n]`` sparse or dense matrix with a nonzero diagonal.
        omega: relaxation factor in (0, 2); 1 gives Gauss–Seidel. Default 1.
        ordering: ``"natural"`` (default; triangular solves through SuperLU) or ``"redblack"``
            (graph must be 2-colourable; each half-sweep is a vectorised update).

    Set-up cost: one SuperLU "factorisation" of a triangular matrix per direction used (the
    forward one is reused transposed for the backward sweep when A is exactly symmetric).
    """

    def __init__(self, A: Any, omega: float = 1.0, ordering: str = "natural"):
        self.omega = check_omega(omega)
        self.ordering = check_choice("ordering", ordering, ORDERINGS)
        matrix = as_csr(A, copy=True)
        self.n = matrix.shape[0]
        self.dtype = matrix.dtype
        diag = checked_diagonal(matrix)
        # The coefficient of D in N, 1 − 1/ω; zero for Gauss–Seidel.
        self._kappa = 1.0 - 1.0 / self.omega
        if self.ordering == "natural":
            self.permutation: Optional[np.ndarray] = None
            self._setup_natural(matrix, diag)
        else:
            red, black = red_black_ordering(matrix)
            self.permutation = np.concatenate([red, black])
            self._setup_red_black(matrix, diag, red, black)

    # -- set-up ------------------------------------------------------------------------------

    def _setup_natural(self, matrix: sp.csr_array, diag: np.ndarray) -> None:
        self._matrix = matrix
        self._rows = np.repeat(
            np.arange(self.n, dtype=matrix.indices.dtype), np.diff(matrix.indptr)
        )
        self._parts: dict[str, sp.csr_array] = {}
        self._forward_factor: Any = None
        self._backward_factor: Any = None
        self._backward_transposed = False

    def _part(self, name: str) -> sp.csr_array:
        """``N_f``, ``N_b``, ``M_f`` or ``M_b``, built on first use."""
        if name not in self._parts:
            lower = name in ("n_backward", "m_forward")
            factor = 1.0 / self.omega if name.startswith("m_") else self._kappa
            self._parts[name] = _triangle(self._matrix, self._rows, lower, factor)
        return self._parts[name]

    def _setup_red_black(self, matrix: sp.csr_array, diag: np.ndarray, red: np.ndarray,
                         black: np.ndarray) -> None:
        self._n_red = red.size
        self._red_black = sp.csr_array(matrix[red][:, black])
        self._black_red = sp.csr_array(matrix[black][:, red])
        self._d_red, self._d_black = diag[red], diag[black]
        self._omega_over_d_red = self.omega / self._d_red
        self._omega_over_d_black = self.omega / self._d_black

    def _forward_solver(self) -> Any:
        if self._forward_factor is None:
            self._forward_factor = _triangular_factor(self._part("m_forward"))
        return self._forward_factor

    def _backward_solver(self) -> Any:
        if self._backward_factor is None:
            if (self._matrix != self._matrix.T).nnz == 0:
                # Exactly symmetric: D/ω + U = (D/ω + L)ᵀ, one factor serves both directions.
                self._backward_factor = self._forward_solver()
                self._backward_transposed = True
            else:
                # Reversing the unknowns turns D/ω + U into a lower-triangular matrix, whose
                # SuperLU solve is faster than that of an upper-triangular one (measured).
                upper = self._part("m_backward")
                self._backward_factor = _triangular_factor(sp.csr_array(upper[::-1][:, ::-1]))
                self._parts.pop("m_backward")
        return self._backward_factor

    # -- index spaces ------------------------------------------------------------------------

    def to_internal(self, v: np.ndarray) -> np.ndarray:
        """``[n]`` vector in original order → the splitting's order (a copy)."""
        v = np.asarray(v)
        return v[self.permutation] if self.permutation is not None else v.copy()

    def to_original(self, v: np.ndarray) -> np.ndarray:
        """``[n]`` vector in the splitting's order → original order."""
        if self.permutation is None:
            return v
        out = np.empty_like(v)
        out[self.permutation] = v
        return out

    # -- the four operations (internal order) -------------------------------------------------

    def forward_rhs(self, b: np.ndarray, x: np.ndarray) -> np.ndarray:
        """``c = b − N_f x``."""
        if self.permutation is None:
            return b - self._part("n_forward") @ x
        m = self._n_red
        c = np.empty_like(b, dtype=np.result_type(b, x))
        c[:m] = b[:m] - self._red_black @ x[m:]
        c[m:] = b[m:]
        if self._kappa:
            c[:m] -= self._kappa * self._d_red * x[:m]
            c[m:] -= self._kappa * self._d_black * x[m:]
        return c

    def forward_solve(self, c: np.ndarray) -> np.ndarray:
        """``x = M_f⁻¹ c``."""
        if self.permutation is None:
            return self._forward_solver().solve(c)
        m = self._n_red
        x = np.empty_like(c)
        x[:m] = c[:m] * self._omega_over_d_red
        x[m:] = (c[m:] - self._black_red @ x[:m]) * self._omega_over_d_black
        return x

    def backward_rhs(self, b: np.ndarray, x: np.ndarray) -> np.ndarray:
        """``c = b − N_b x``."""
        if self.permutation is None:
            return b - self._part("n_backward") @ x
        m = self._n_red
        c = np.empty_like(b, dtype=np.result_type(b, x))
        c[m:] = b[m:] - self._black_red @ x[:m]
        c[:m] = b[:m]
        if self._kappa:
            c[:m] -= self._kappa * self._d_red * x[:m]
            c[m:] -= self._kappa * self._d_black * x[m:]
        return c

    def backward_solve(self, c: np.ndarray) -> np.ndarray:
        """``x = M_b⁻¹ c``."""
        if self.permutation is None:
            factor = self._backward_solver()
            if self._backward_transposed:
                return factor.solve(c, trans="T")
            return factor.solve(np.ascontiguousarray(c[::-1]))[::-1].copy()
        m = self._n_red
        x = np.empty_like(c)
        x[m:] = c[m:] * self._omega_over_d_black
        x[:m] = (c[:m] - self._red_black @ x[m:]) * self._omega_over_d_red
        return x

    # -- convenience -------------------------------------------------------------------------

    def sweep(self, b: np.ndarray, x: np.ndarray, direction: str = "forward") -> np.ndarray:
        """One SOR sweep from ``x`` for ``A x = b``, in original order; returns the new ``[n]`` x.

        ``direction``: ``"forward"``, ``"backward"`` or ``"symmetric"`` (forward then backward).
        """
        direction = check_choice("direction", direction, DIRECTIONS)
        b_in, x_in = self._cast(self.to_internal(b)), self._cast(self.to_internal(x))
        if direction in ("forward", "symmetric"):
            x_in = self.forward_solve(self.forward_rhs(b_in, x_in))
        if direction in ("backward", "symmetric"):
            x_in = self.backward_solve(self.backward_rhs(b_in, x_in))
        return self.to_original(x_in)

    def _cast(self, v: np.ndarray) -> np.ndarray:
        if v.dtype != self.dtype:
            if np.can_cast(v.dtype, self.dtype, casting="same_kind"):
                return np.ascontiguousarray(v, dtype=self.dtype)
            raise TypeError(
                f"vector of dtype {v.dtype} cannot be relaxed with a {self.dtype} matrix"
            )
        return np.ascontiguousarray(v)
