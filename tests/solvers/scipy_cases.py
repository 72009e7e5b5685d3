"""SciPy's iterative-solver case registry, as plain data for our own tests.

The cases come from the installed SciPy's own test module,
``scipy/sparse/linalg/_isolve/tests/test_iterative.py`` (its ``IterativeParams().cases``:
``Case`` objects with ``name, A, b, skip, nonconvergence``, where ``skip`` and
``nonconvergence`` hold SciPy solver functions). :func:`load_cases` turns them into
:class:`ScipyCase` records whose solver lists are SciPy solver *names* (``"cg"``,
``"gmres"``, ...), so that nothing of SciPy's test machinery leaks into ours (see
:func:`import_scipy_registry` for how the classes are loaded without SciPy's test functions).

If that module cannot be found or run (a SciPy built without its tests, or a layout that moved),
:func:`rebuild_cases` builds the same matrices and right-hand sides with our own code: the
same seeds and the same order of random draws, so the numbers agree bit for bit. A test of
``test_scipy_registry.py`` compares the two whenever SciPy's module is available, so the
fallback cannot drift silently.
"""

from __future__ import annotations

import ast
import importlib.util
import warnings
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import scipy.sparse as sp

SCIPY_TEST_MODULE = "scipy.sparse.linalg._isolve.tests.test_iterative"

#: SciPy solver -> the methods of ours that share its theory (and so its skip list).
SCIPY_TO_OURS = {
    "cg": ("cg", "fcg"),
    "gmres": ("gmres", "fgmres", "gcrodr"),
    "minres": ("minres",),
    "bicgstab": ("bicgstab",),
}


@dataclass
class ScipyCase:
    name: str
    A: object  # a SciPy sparse array or a dense NumPy array, as SciPy's registry has it
    b: np.ndarray
    skip: frozenset = field(default_factory=frozenset)  # SciPy solver names
    nonconvergence: frozenset = field(default_factory=frozenset)
    source: str = "scipy"  # "scipy": SciPy's own registry; "rebuilt": rebuild_cases()

    @property
    def n(self) -> int:
        return self.A.shape[0]

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.A.dtype)

    @property
    def is_complex(self) -> bool:
        return self.dtype.kind == "c"

    def dense(self) -> np.ndarray:
        return self.A.toarray() if sp.issparse(self.A) else np.asarray(self.A)


def _names(solvers) -> frozenset:
    return frozenset(getattr(s, "__name__", str(s)) for s in (solvers or ()))


def import_scipy_registry() -> Optional[list]:
    """SciPy's own ``Case`` objects, or None when its test module cannot be found or run.

    The module is not imported as a whole: its test functions carry marks of SciPy's own
    pytest set-up (``fail_slow``), which ``--strict-markers`` rejects at import time. Instead its
    import statements and its two registry classes, ``Case`` and ``IterativeParams``, are
    taken from the installed file's syntax tree and run on their own, so the cases are exactly
    SciPy's, read from SciPy's file at test time (nothing of it is copied into this repo).
    Note that ``IterativeParams()`` seeds NumPy's global random state, as it does in SciPy.
    """
    try:
        spec = importlib.util.find_spec(SCIPY_TEST_MODULE)
        if spec is None or spec.origin is None:
            return None
        with open(spec.origin, encoding="utf-8") as handle:
            tree = ast.parse(handle.read(), filename=spec.origin)
        keep = [node for node in tree.body
                if isinstance(node, (ast.Import, ast.ImportFrom))
                or (isinstance(node, ast.ClassDef) and node.name in ("Case", "IterativeParams"))]
        namespace: dict = {"__name__": "scipy_iterative_registry"}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            exec(compile(ast.Module(body=keep, type_ignores=[]), spec.origin, "exec"), namespace)
            return list(namespace["IterativeParams"]().cases)
    except Exception:  # a SciPy without its tests, or a layout that moved
        return None


def rebuild_cases() -> list[ScipyCase]:
    """The cases of SciPy's ``IterativeParams`` (SciPy 1.11 to 1.17), built independently."""
    cases: list[ScipyCase] = []

    def add(name, A, b=None, skip=(), nonconvergence=()):
        b = np.arange(A.shape[0], dtype=float) if b is None else b
        cases.append(ScipyCase(name, A, b, frozenset(skip), frozenset(nonconvergence),
                               source="rebuilt"))

    posdef = ("cg",)
    sym = ("minres", "cg")
    real_only = ("minres",)

    n = 40
    poisson1d = sp.diags_array([2.0 * np.ones(n), -np.ones(n - 1), -np.ones(n - 1)],
                               offsets=[0, -1, 1], shape=(n, n)).tocsr()
    add("poisson1d", poisson1d)
    add("poisson1d-F", poisson1d.astype(np.float32), skip=("minres",))
    add("neg-poisson1d", -poisson1d, skip=posdef)
    add("neg-poisson1d-F", (-poisson1d).astype(np.float32), skip=posdef + ("minres",))

    eye = sp.eye_array(n, format="csr")
    poisson2d = (sp.kron(poisson1d, eye) + sp.kron(eye, poisson1d)).tocsr()
    add("poisson2d", poisson2d, skip=("minres",))
    add("poisson2d-F", poisson2d.astype(np.float32), skip=("minres",))

    diagonal = np.array([6, -5, 2, 7, -1, 10, 4, -3, -8, 9], dtype=float)
    rand_diag = sp.diags_array(diagonal).tocsr()
    add("rand-diag", rand_diag, skip=posdef)
    add("rand-diag-F", rand_diag.astype(np.float32), skip=posdef)

    rand = np.random.RandomState(1234).rand(4, 4)
    add("rand", rand, skip=posdef + sym)
    add("rand-F", rand.astype(np.float32), skip=posdef + sym)

    rand_sym = rand + rand.T
    add("rand-sym", rand_sym, skip=posdef)
    add("rand-sym-F", rand_sym.astype(np.float32), skip=posdef)

    g = np.random.RandomState(1234).rand(9, 9)  # SciPy seeds the global state with 1234
    rand_sym_pd = g.conj() @ g.T
    add("rand-sym-pd", rand_sym_pd)
    add("rand-sym-pd-F", rand_sym_pd.astype(np.float32), skip=("minres",))

    rng = np.random.RandomState(1234)
    real = rng.rand(4, 4)
    rand_cmplx = real + 1j * rng.rand(4, 4)
    skip_complex = posdef + sym + real_only
    add("rand-cmplx", rand_cmplx, skip=skip_complex)
    add("rand-cmplx-F", rand_cmplx.astype(np.complex64), skip=skip_complex)

    herm = rand_cmplx + rand_cmplx.T.conj()
    add("rand-cmplx-herm", herm, skip=posdef + real_only)
    add("rand-cmplx-herm-F", herm.astype(np.complex64), skip=posdef + real_only)

    rng = np.random.RandomState(1234)
    real = rng.rand(9, 9)
    g = real + 1j * rng.rand(9, 9)
    hpd = g.conj() @ g.T
    add("rand-cmplx-sym-pd", hpd, skip=real_only)
    add("rand-cmplx-sym-pd-F", hpd.astype(np.complex64), skip=real_only)

    nonsym = sp.diags_array([2.0 * np.ones(10), -np.ones(9)], offsets=[0, -1]).tocsr()
    skip_nonsym = sym + ("cgs", "qmr", "bicg", "tfqmr")
    add("nonsymposdef", nonsym, skip=skip_nonsym)
    add("nonsymposdef-F", nonsym.astype(np.complex64), skip=skip_nonsym)

    # A symmetric saddle-point matrix on which BiCG-type methods break down:
    #   [[0, c, -I], [cᵀ, 0, 0], [-I, 0, -I]] with c = (1, 2, 2, 2, 1), b = e₅.
    c = np.array([1, 2, 2, 2, 1], dtype=float)
    S = np.zeros((11, 11))
    S[:5, 5] = c
    S[5, :5] = c
    S[:5, 6:] = -np.eye(5)
    S[6:, :5] = -np.eye(5)
    S[6:, 6:] = -np.eye(5)
    b = np.zeros(11)
    b[5] = 1.0
    add("sym-nonpd", S, b, skip=posdef,
        nonconvergence=("cgs", "bicg", "bicgstab", "qmr", "tfqmr"))
    return cases


def load_cases() -> list[ScipyCase]:
    """SciPy's registry when importable, else :func:`rebuild_cases`."""
    scipy_cases = import_scipy_registry()
    if scipy_cases is None:
        return rebuild_cases()
    return [ScipyCase(c.name, c.A, np.asarray(c.b), _names(c.skip), _names(c.nonconvergence))
            for c in scipy_cases]
