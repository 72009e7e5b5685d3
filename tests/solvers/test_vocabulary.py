"""One vocabulary: every backend names an option and defaults it as ``solvers/vocabulary.py`` says.

Each backend reports the options its code actually takes, read from its own signatures
(``option_defaults``); these tests fail when a name or a default differs from the vocabulary,
or when an option a backend offers is missing from it.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import scipy.sparse as sp

from pdesuite.solvers import METHODS, RecyclingSolver, solve
from pdesuite.solvers.registry import option_defaults as numpy_option_defaults
from pdesuite.solvers.vocabulary import (
    BACKEND_OPTIONS,
    DEFAULT_ATOL,
    DEFAULT_RTOL,
    METHOD_DEFAULTS,
)


def _assert_matches_vocabulary(backend: str, method: str, actual: dict) -> None:
    expected = {**METHOD_DEFAULTS[method], **BACKEND_OPTIONS[backend]}
    unknown = sorted(set(actual) - set(expected))
    assert not unknown, f"{backend} {method}: options {unknown} are not in the vocabulary"
    for name, default in actual.items():
        assert default == expected[name], (
            f"{backend} {method}: {name} defaults to {default!r}, the vocabulary says "
            f"{expected[name]!r}")


@pytest.mark.parametrize("method", sorted(METHODS))
def test_numpy_methods_use_the_vocabulary(method):
    _assert_matches_vocabulary("numpy", method, numpy_option_defaults(method))


def test_every_numpy_method_is_in_the_vocabulary():
    assert set(METHODS) <= set(METHOD_DEFAULTS)


def test_torch_methods_use_the_vocabulary():
    pytest.importorskip("torch")
    from pdesuite.solvers import torch_backend

    for method in torch_backend.METHODS:
        _assert_matches_vocabulary("torch", method, torch_backend.option_defaults(method))


@pytest.mark.petsc
def test_petsc_methods_use_the_vocabulary():
    pytest.importorskip("petsc4py")
    from pdesuite.solvers import petsc_backend

    for method in petsc_backend.METHODS:
        if method in METHOD_DEFAULTS:
            _assert_matches_vocabulary("petsc", method, petsc_backend.option_defaults(method))


def _default(function, name):
    return inspect.signature(function).parameters[name].default


def test_stopping_defaults_are_the_same_everywhere():
    from pdesuite.solvers import api

    assert _default(api.solve, "rtol") == DEFAULT_RTOL
    assert _default(api.solve, "atol") == DEFAULT_ATOL
    assert _default(RecyclingSolver, "rtol") == DEFAULT_RTOL
    assert _default(RecyclingSolver, "atol") == DEFAULT_ATOL
    pytest.importorskip("torch")
    from pdesuite.solvers import torch_backend

    assert _default(torch_backend.solve, "rtol") == DEFAULT_RTOL
    assert _default(torch_backend.solve, "atol") == DEFAULT_ATOL


@pytest.mark.petsc
def test_petsc_stopping_defaults_and_preconditioner_name():
    pytest.importorskip("petsc4py")
    from pdesuite.solvers import petsc_backend

    for function in (petsc_backend.solve, petsc_backend.PetscSolver):
        assert _default(function, "rtol") == DEFAULT_RTOL
        assert _default(function, "atol") == DEFAULT_ATOL
    assert "M" in inspect.signature(petsc_backend.PetscSolver).parameters
    assert "pc" not in inspect.signature(petsc_backend.PetscSolver).parameters


@pytest.mark.parametrize("backend", ["numpy", "torch", "petsc"])
def test_an_unknown_option_is_an_error_naming_it(backend):
    if backend == "torch":
        pytest.importorskip("torch")
    if backend == "petsc":
        pytest.importorskip("petsc4py")
    A = sp.csr_array(sp.diags_array([-1.0, 2.0, -1.0], offsets=[-1, 0, 1], shape=(20, 20)))
    b = np.ones(20)
    for old_name in ("orthogonalization", "truncation", "m"):
        with pytest.raises(TypeError, match=old_name):
            solve(A, b, method="gmres" if old_name != "truncation" else "fcg", backend=backend,
                  **{old_name: 1})


def test_the_default_rtol_is_met_on_the_true_residual():
    A = sp.csr_array(sp.diags_array([-1.0, 2.0, -1.0], offsets=[-1, 0, 1], shape=(50, 50)))
    b = np.ones(50)
    result = solve(A, b, method="cg")
    assert result.converged
    assert np.linalg.norm(b - A @ result.x) <= DEFAULT_RTOL * np.linalg.norm(b)
