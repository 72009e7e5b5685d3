"""generate(solver="auto"): the candidates, the timing probe and how its choice is kept."""

import json
from types import SimpleNamespace

import h5py
import numpy as np
import pytest

from pdesuite.datasets import generate, get_family
from pdesuite.datasets.generation import solver_choice
from pdesuite.datasets.generation.solver_choice import (
    DIRECT_PROBE_LIMIT_3D,
    MIN_PROBED_SAMPLES,
    candidate_solvers,
    choose_solver,
    estimate_block_time,
)


class _Clock:
    """A fake ``time.perf_counter`` that the fake solves below advance."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def _fake_solve(clock, seconds, converged=True):
    """A block solver whose n-th solve takes ``seconds[n]`` on ``clock``."""
    calls = iter(seconds)

    def solve(A, b, callback=None):
        clock.now += next(calls)
        return SimpleNamespace(converged=converged)

    return solve


def test_estimate_extrapolates_first_solve_and_mean_of_the_rest():
    assert estimate_block_time([5.0, 1.0, 3.0], 10) == pytest.approx(5.0 + 9 * 2.0)
    assert estimate_block_time([2.0], 4) == pytest.approx(8.0)
    with pytest.raises(ValueError, match="times"):
        estimate_block_time([], 4)


def test_choose_solver_takes_the_smallest_block_time_and_cuts_off_slow_candidates(monkeypatch):
    clock = _Clock()
    monkeypatch.setattr(solver_choice.time, "perf_counter", clock)
    systems = [SimpleNamespace(A=None, b=None)] * 3
    # a: 1 + 9·1 = 10 s per block of 10; b: a slow start (analysis) then cheap: 4 + 9·0.1 = 4.9;
    # c: after its second solve it can reach no less than 1 + 9·(2 + 0)/2 = 10 s > 4.9 s, so
    # it is stopped there, with 3 s spent of the 4.9 s it had left.
    timings = {"a": [1.0, 1.0, 1.0], "b": [4.0, 0.1, 0.1], "c": [1.0, 2.0, 2.0]}
    candidates = ["a", {"method": "b"}, {"method": "c", "M": "ilu"}]
    index, estimates = choose_solver(
        systems,
        candidates,
        lambda c: _fake_solve(clock, timings[c if isinstance(c, str) else c["method"]]),
        block_size=10,
    )
    assert index == 1
    assert estimates["a"] == pytest.approx(1.0) and estimates["b"] == pytest.approx(0.49)
    assert estimates["c+ilu"] is None
    assert clock.now == pytest.approx(3.0 + 4.2 + 3.0)


def test_an_iterative_candidate_is_stopped_once_it_runs_past_the_best_block(monkeypatch):
    clock = _Clock()
    monkeypatch.setattr(solver_choice.time, "perf_counter", clock)
    iterations_run = []

    def slow_iterative(A, b, callback=None):
        for iteration in range(1, 1001):  # 0.01 s per iteration, 10 s if it ran to the end
            clock.now += 0.01
            iterations_run.append(iteration)
            callback(iteration, 1.0)
        return SimpleNamespace(converged=True)

    solves = {"direct": _fake_solve(clock, [1.0, 0.5]), "cg": slow_iterative}
    index, estimates = choose_solver([SimpleNamespace(A=None, b=None)] * 2, ["direct", "cg"],
                                     solves.__getitem__, block_size=4)
    assert index == 0 and estimates == {"direct": pytest.approx(0.625), "cg": None}
    assert len(iterations_run) == 251  # stopped at the first check past 2.5 s


def test_an_independent_candidate_is_stopped_once_a_block_of_such_solves_cannot_win(monkeypatch):
    """Every later sample of an independent solver costs about its first: a candidate still in
    its first solve after 1/B of the best block time cannot win."""
    clock = _Clock()
    monkeypatch.setattr(solver_choice.time, "perf_counter", clock)
    iterations_run = []

    def never_converging(A, b, callback=None):
        for iteration in range(1, 10_001):
            clock.now += 0.01
            iterations_run.append(iteration)
            callback(iteration, 1.0)
        return SimpleNamespace(converged=False)

    solves = {"direct": _fake_solve(clock, [1.0, 0.5]), "gmres": never_converging}
    candidates = ["direct", {"method": "gmres", "mode": "independent"}]
    index, estimates = choose_solver([SimpleNamespace(A=None, b=None)] * 2, candidates,
                                     lambda c: solves[c if isinstance(c, str) else c["method"]],
                                     block_size=4)
    assert index == 0 and estimates == {"direct": pytest.approx(0.625), "gmres": None}
    assert len(iterations_run) == 63  # 4 × 0.63 s > 2.5 s, the direct block


def test_a_candidate_that_does_not_converge_never_wins(monkeypatch):
    clock = _Clock()
    monkeypatch.setattr(solver_choice.time, "perf_counter", clock)
    systems = [SimpleNamespace(A=None, b=None)] * 2
    solves = {
        "fast": _fake_solve(clock, [0.1, 0.1], converged=False),
        "slow": _fake_solve(clock, [1.0, 1.0]),
    }
    index, estimates = choose_solver(systems, ["fast", "slow"], solves.__getitem__, block_size=4)
    assert index == 1 and estimates == {"fast": None, "slow": pytest.approx(1.0)}


def test_candidates_put_the_rule_first_and_leave_out_what_cannot_run():
    assert candidate_solvers(get_family("darcy", resolution=12)) == \
        ["direct", {"method": "cg", "M": "ic"}, "recycle"]
    assert candidate_solvers(get_family("helmholtz", resolution=12)) == \
        ["direct", {"method": "gmres", "M": "ilu"}, "recycle"]
    small_3d = get_family("darcy-3d", resolution=8)
    assert candidate_solvers(small_3d) == [{"method": "cg", "M": "ic"}, "direct", "recycle"]
    side = int(round(DIRECT_PROBE_LIMIT_3D ** (1 / 3))) + 2
    assert "direct" not in candidate_solvers(get_family("darcy-3d", resolution=side))
    assert candidate_solvers(get_family("darcy", resolution=12), backend="petsc") == \
        [{"method": "cg", "M": "ic"}]


def test_auto_records_the_probe_and_its_choice_reproduces_the_file(tmp_path, monkeypatch):
    """The probe runs once per run, before the workers; its choice, passed back as ``solver``,
    gives the same arrays bit for bit."""
    from pdesuite.datasets.generation import plan as plan_module

    calls = []
    probe = plan_module.probe_solver

    def counting_probe(*args, **kwargs):
        calls.append(1)
        return probe(*args, **kwargs)

    monkeypatch.setattr(plan_module, "probe_solver", counting_probe)
    n = MIN_PROBED_SAMPLES + 2
    path = generate("darcy", n, tmp_path / "auto.h5", resolution=12, seed=4, chunk_size=5,
                    workers=2, progress=False)
    assert len(calls) == 1
    with h5py.File(path, "r") as handle:
        config = json.loads(handle.attrs["solver_config"])
        outputs = handle["outputs"][()]
        assert handle["solver/converged"][()].all()
        assert np.all(handle["solver/residual"][()] <= 1e-8)
    assert config["chosen_by"] == "probe" and config["probe_time"] > 0
    assert set(config["estimates"]) == {"direct", "cg+ic", "rcg"}
    chosen = [value for value in config["estimates"].values() if value is not None]
    assert config["estimates"][solver_choice.label(config)] == min(chosen)
    explicit = {
        key: config[key] for key in ("method", "M", "rtol", "maxiter") if config[key] is not None
    }
    again = generate("darcy", n, tmp_path / "again.h5", resolution=12, seed=4, chunk_size=5,
                     solver=explicit, progress=False)
    with h5py.File(again, "r") as handle:
        assert np.array_equal(handle["outputs"][()], outputs)


def test_auto_takes_tolerances_for_every_candidate_and_refuses_other_options(tmp_path):
    path = generate("darcy", MIN_PROBED_SAMPLES, tmp_path / "tol.h5", resolution=10, seed=1,
                    solver={"method": "auto", "rtol": 1e-5}, progress=False)
    with h5py.File(path, "r") as handle:
        config = json.loads(handle.attrs["solver_config"])
        assert config["rtol"] == 1e-5
        assert np.all(handle["solver/residual"][()] <= 1e-5)
    with pytest.raises(ValueError, match="solver: 'auto' takes only"):
        generate(
            "darcy",
            3,
            tmp_path / "bad.h5",
            resolution=10,
            solver={"method": "auto", "M": "ilu"},
            progress=False,
        )
