"""Dataset generation: storage at the draw index, determinism across workers, resumption."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from pdesuite.datasets.pde_family import FAMILIES, PDEFamily, batch_solves
from pdesuite.datasets.generation import cli_generate, generate, resolve_solver_config
from pdesuite.datasets.storage import SOLVER_STATS, open_dataset
from pdesuite.discretization import Grid, fd

REPO = Path(__file__).resolve().parents[2]


class TinyDiffusion(PDEFamily):
    """-∇·(a∇u) = 1 on an s×s grid, zero Dirichlet; a = exp(a few random sine modes).

    ``interrupt_at`` (a class attribute, not configuration) raises KeyboardInterrupt when that
    sample is drawn; ``fail_at`` (configuration) raises RuntimeError. ``TINY_DELAY`` (seconds,
    environment) slows every sample down, for the kill test.
    """

    name = "test-tiny-diffusion"
    spd = True
    defaults = {"modes": 3, "fail_at": None}
    input_names = ("a",)
    output_names = ("u",)
    units = {"u": "1", "a": "1"}
    min_resolution = 4
    interrupt_at = None

    def setup(self):
        self.grid = Grid((self.resolution, self.resolution))

    def sample(self, rng):
        x, y = self.grid.mesh()
        modes = self.options["modes"]
        weights = rng.standard_normal((modes, modes)) / (1 + np.arange(modes))[:, None]
        field = sum(weights[i, j] * np.sin(np.pi * (i + 1) * x) * np.sin(np.pi * (j + 1) * y)
                    for i in range(modes) for j in range(modes))
        return {"coefficient": np.exp(field), "shift": np.asarray(rng.uniform())}

    def coordinates(self):
        return self.grid.mesh()

    def inputs(self, params):
        return params["coefficient"][None].astype(np.float32)

    def assemble(self, params):
        delay = float(os.environ.get("TINY_DELAY", "0"))
        if delay:
            time.sleep(delay)
        shift = float(params["shift"])
        if type(self).interrupt_at is not None and abs(shift - type(self).interrupt_at) < 1e-15:
            raise KeyboardInterrupt
        if self.options["fail_at"] is not None and abs(shift - self.options["fail_at"]) < 1e-15:
            raise RuntimeError("the family failed on purpose")
        return fd.diffusion(self.grid, params["coefficient"], source=1.0 + shift)

    def outputs(self, params, u_full):
        return u_full.reshape(self.grid.shape)[None].astype(np.float32)


class TinyHeat(PDEFamily):
    """u_t = Δu on an s×s grid with backward Euler, 3 steps; random initial sine mode mix."""

    name = "test-tiny-heat"
    spd = True
    time_dependent = True
    defaults = {"steps": 3, "dt": 0.01}
    input_names = ("u0",)
    output_names = ("u",)
    min_resolution = 4

    def setup(self):
        self.grid = Grid((self.resolution, self.resolution))
        system = fd.diffusion(self.grid, 1.0)
        self.free = system.free
        self.step = sp.csr_array(sp.identity(system.n_free) + self.options["dt"] * system.A)

    def sample(self, rng):
        x, y = self.grid.mesh()
        c = rng.standard_normal(2)
        return {"initial_condition": c[0] * np.sin(np.pi * x) * np.sin(np.pi * y)
                + c[1] * np.sin(2 * np.pi * x) * np.sin(np.pi * y)}

    def coordinates(self):
        return self.grid.mesh()

    def inputs(self, params):
        return params["initial_condition"][None].astype(np.float32)

    @property
    def n_frames(self):
        return self.options["steps"] + 1

    def simulate(self, params, solve=None):
        u = params["initial_condition"].ravel()[self.free]
        frames = [params["initial_condition"]]
        for _ in range(self.options["steps"]):
            result = solve(self.step, u, u)
            u = result.x
            full = np.zeros(self.grid.size)
            full[self.free] = u
            frames.append(full.reshape(self.grid.shape))
        return np.array(frames, dtype=np.float32)[:, None], []


def _arrays(path, skip_time=True):
    """Every array of a generated file except the timings, by name."""
    out = {}
    with open_dataset(path) as handle:
        def visit(name, item):
            if isinstance(item, h5py.Dataset) and not (skip_time and name == "solver/time"):
                out[name] = item[()]
        handle.visititems(visit)
    return out


def _assert_bitwise_equal(a, b):
    assert sorted(a) == sorted(b)
    for name in a:
        assert a[name].dtype == b[name].dtype, name
        assert np.array_equal(a[name], b[name]), name


def test_samples_are_stored_at_their_draw_index_and_solved_accurately(tmp_path):
    family = TinyDiffusion(8)
    path = generate(
        family, 10, tmp_path / "d.h5", solver="recycle", chunk_size=4, seed=5, progress=False
    )
    arrays = _arrays(path)
    assert arrays["inputs"].shape == (10, 1, 8, 8) and arrays["outputs"].dtype == np.float32
    for index in range(10):
        params = family.sample(np.random.default_rng([5, index]))
        assert np.array_equal(arrays["inputs"][index], family.inputs(params))
        assert np.array_equal(arrays["parameters/coefficient"][index], params["coefficient"])
        system = family.assemble(params)
        exact = family.outputs(params, system.expand(spla.spsolve(system.A.tocsc(), system.b)))
        np.testing.assert_allclose(arrays["outputs"][index], exact, rtol=1e-5, atol=1e-7)
    assert arrays["solver/converged"].all()
    assert np.all(arrays["solver/residual"] <= 1e-8)
    assert np.all(arrays["solver/reason"] > 0) and np.all(arrays["solver/steps"] == 1)
    assert np.all(arrays["solver/iterations"] > 0)
    order = arrays["solve_order"]
    assert np.array_equal(np.sort(order), np.arange(10))
    assert np.array_equal(arrays["solver/position"][order], np.arange(10))
    assert np.array_equal(arrays["solver/block"][order], np.arange(10) // 4)
    with open_dataset(path) as handle:
        attrs = handle.attrs
        assert attrs["family"] == "test-tiny-diffusion" and attrs["seed"] == 5
        assert attrs["order"] == "sorted" and attrs["sort_method"] == "greedy"
        assert attrs["sort_time"] >= 0 and attrs["solve_time"] > 0
        assert '"method": "rcg"' in attrs["solver_config"]
    assert not (tmp_path / "d.h5.parts").exists()


def test_bitwise_identical_for_one_and_two_workers(tmp_path):
    family = TinyDiffusion(8)
    one = generate(
        family, 12, tmp_path / "one.h5", solver="recycle", chunk_size=3, workers=1, progress=False
    )
    two = generate(
        family, 12, tmp_path / "two.h5", solver="recycle", chunk_size=3, workers=2, progress=False
    )
    _assert_bitwise_equal(_arrays(one), _arrays(two))


def test_orders_store_the_same_samples(tmp_path):
    family = TinyDiffusion(6)
    given = _arrays(generate(family, 8, tmp_path / "g.h5", order="given", progress=False))
    shuffled = _arrays(generate(family, 8, tmp_path / "r.h5", order="random", progress=False))
    fft = _arrays(generate(family, 8, tmp_path / "f.h5", sort_method="fft", progress=False))
    assert np.array_equal(given["solve_order"], np.arange(8))
    assert np.array_equal(shuffled["solve_order"], np.random.default_rng(0).permutation(8))
    for other in (shuffled, fft):
        assert np.array_equal(given["inputs"], other["inputs"])
        np.testing.assert_allclose(given["outputs"], other["outputs"], rtol=1e-5, atol=1e-7)


def test_independent_solves_and_a_non_converged_sample_is_kept(tmp_path):
    family = TinyDiffusion(8)
    path = generate(family, 5, tmp_path / "cg2.h5", solver={"method": "cg", "maxiter": 2},
                    progress=False)
    arrays = _arrays(path)
    assert arrays["outputs"].shape[0] == 5
    assert not arrays["solver/converged"].any()
    assert np.all(arrays["solver/reason"] == -3)  # DIVERGED_MAX_ITERATIONS
    assert np.all(arrays["solver/iterations"] == 2)
    assert np.all(arrays["solver/residual"] > 1e-3)
    good = _arrays(generate(family, 5, tmp_path / "cg.h5", solver="independent", progress=False))
    assert good["solver/converged"].all() and np.all(good["solver/residual"] <= 1e-8)


def test_time_dependent_family_stores_trajectories(tmp_path):
    family = TinyHeat(6)
    path = generate(family, 4, tmp_path / "heat.h5", chunk_size=2, progress=False)
    arrays = _arrays(path)
    assert arrays["trajectories"].shape == (4, 4, 1, 6, 6)
    assert np.array_equal(arrays["trajectories"][:, 0], arrays["inputs"])
    assert np.all(arrays["solver/steps"] == 3) and arrays["solver/converged"].all()
    # Reference: backward Euler with a direct solve.
    params = family.sample(np.random.default_rng([0, 2]))
    u = params["initial_condition"].ravel()[family.free]
    for step in range(1, 4):
        u = spla.spsolve(family.step.tocsc(), u)
        full = np.zeros(family.grid.size)
        full[family.free] = u
        np.testing.assert_allclose(arrays["trajectories"][2, step, 0], full.reshape(6, 6),
                                   rtol=1e-5, atol=1e-7)
    with open_dataset(path) as handle:
        assert handle.attrs["kind"] == "time-dependent"


def _tiny_navier_stokes():
    from pdesuite.datasets import get_family

    return get_family(
        "navier-stokes", resolution=16, nu=1e-4, dt=1e-3, final_time=0.01, record_interval=0.005
    )


def test_navier_stokes_batches_are_bitwise_identical_for_any_workers_and_batch_size(tmp_path):
    family = _tiny_navier_stokes()
    # Blocks of 3 samples, batches of 2 (+ 1): a batch never crosses a block.
    one = generate(
        family, 5, tmp_path / "one.h5", chunk_size=3, batch_size=2, workers=1, progress=False
    )
    two = generate(
        family, 5, tmp_path / "two.h5", chunk_size=3, batch_size=2, workers=2, progress=False
    )
    single = generate(family, 5, tmp_path / "single.h5", chunk_size=3, batch_size=1, progress=False)
    reference = _arrays(one)
    _assert_bitwise_equal(reference, _arrays(two))
    _assert_bitwise_equal(reference, _arrays(single))
    assert reference["trajectories"].shape == (5, 3, 1, 16, 16)
    for index in (0, 4):
        params = family.sample(np.random.default_rng([0, index]))
        assert np.array_equal(reference["trajectories"][index], family.simulate(params)[0])
    assert np.all(reference["solver/steps"] == 0) and reference["solver/converged"].all()
    # The batch size of a batch-invariant family is not part of the run: same hash.
    hashes = set()
    for path in (one, single):
        with open_dataset(path) as handle:
            hashes.add(handle.attrs["run_hash"])
    assert len(hashes) == 1
    # The CLI option, with other blocks and batches: the same first two samples.
    cli_out = tmp_path / "cli.h5"
    assert (
        cli_generate(
            [
                "navier-stokes", "--n", "2", "--resolution", "16", "--set", "nu=1e-4", "--set",
                "dt=1e-3", "--set", "final_time=0.01", "--set", "record_interval=0.005",
                "--batch-size", "2", "--out", str(cli_out), "--no-progress",
            ]
        )
        == 0
    )
    assert np.array_equal(_arrays(cli_out)["trajectories"], reference["trajectories"][:2])


class TinyHeatBatchDependent(TinyHeat):
    name = "test-tiny-heat-batch-dependent"
    batch_invariant = False
    default_batch_size = 2


def test_batches_of_a_looping_family_keep_per_sample_statistics(tmp_path):
    family = TinyHeat(6)
    looped = _arrays(
        generate(family, 5, tmp_path / "b1.h5", chunk_size=5, batch_size=1, progress=False)
    )
    batched = _arrays(
        generate(family, 5, tmp_path / "b3.h5", chunk_size=5, batch_size=3, progress=False)
    )
    _assert_bitwise_equal(looped, batched)  # the same solves in the same order, recycled alike
    # Each sample's recorder saw its own 3 solves, not those of its whole batch.
    assert np.all(batched["solver/steps"] == 3) and batched["solver/matvecs"].sum() > 0
    # A family whose arrays depend on the batch makes batch_size part of the run.
    dependent = TinyHeatBatchDependent(6)
    with open_dataset(generate(dependent, 3, tmp_path / "d2.h5", progress=False)) as handle:
        default_hash = handle.attrs["run_hash"]
    with open_dataset(
        generate(dependent, 3, tmp_path / "d1.h5", batch_size=1, progress=False)
    ) as handle:
        assert handle.attrs["run_hash"] != default_hash
    with open_dataset(
        generate(dependent, 3, tmp_path / "d2b.h5", batch_size=2, progress=False)
    ) as handle:
        assert handle.attrs["run_hash"] == default_hash


class TinyHeatLockstep(TinyHeat):
    """TinyHeat stepping its batch in lockstep: step 1 of every sample, then step 2, ...

    Its solves interleave across the samples of a batch, so with a stateful solver (recycling,
    a tuner) its arrays depend on the batch size although it keeps ``batch_invariant = True``.
    """

    name = "test-tiny-heat-lockstep"
    default_batch_size = 2

    def sample(self, rng):
        # White noise, not two eigenmodes: CG needs many iterations, so recycling shows.
        return {"initial_condition": rng.standard_normal(self.grid.shape)}

    def simulate_batch(self, params_list, solve=None):
        solves = batch_solves(solve, len(params_list))
        states = [params["initial_condition"].ravel()[self.free] for params in params_list]
        frames = [[params["initial_condition"]] for params in params_list]
        for _ in range(self.options["steps"]):
            for sample, sample_solve in enumerate(solves):
                states[sample] = sample_solve(self.step, states[sample], states[sample]).x
                full = np.zeros(self.grid.size)
                full[self.free] = states[sample]
                frames[sample].append(full.reshape(self.grid.shape))
        return np.array(frames, dtype=np.float32)[:, :, None], [[] for _ in params_list]


def _run_hash(path):
    with open_dataset(path) as handle:
        return str(handle.attrs["run_hash"])


def test_an_overriding_simulate_batch_with_solves_puts_batch_size_into_the_run(tmp_path):
    family = TinyHeatLockstep(10)
    # Recycling across interleaved solves: the batch size changes the solves (the defect the
    # hash must reflect; measured iterations 22, 50, 30, 30 alone, 38, 37, 31, 30 in pairs),
    # so it is part of the run configuration.
    paths = {size: generate(family, 4, tmp_path / f"r{size}.h5", chunk_size=4, batch_size=size,
                            order="given", progress=False) for size in (1, 2)}
    assert _run_hash(paths[1]) != _run_hash(paths[2])
    batched, single = _arrays(paths[2]), _arrays(paths[1])
    assert not np.array_equal(batched["solver/iterations"], single["solver/iterations"])
    # With a tuner too, even on independent solves.
    tuned = {"method": "cg", "M": "ssor", "tune": {"option": "omega", "values": [1.0, 1.5]}}
    tuned_hashes = {
        _run_hash(
            generate(
                family, 2, tmp_path / f"t{size}.h5", batch_size=size, solver=tuned, progress=False
            )
        )
        for size in (1, 2)
    }
    assert len(tuned_hashes) == 2
    # Stateless independent solves: the batch cannot matter, and the hash leaves it out.
    independent = {
        size: generate(
            family,
            4,
            tmp_path / f"i{size}.h5",
            chunk_size=4,
            batch_size=size,
            solver="independent",
            progress=False,
        )
        for size in (1, 2)
    }
    assert _run_hash(independent[1]) == _run_hash(independent[2])
    _assert_bitwise_equal(_arrays(independent[1]), _arrays(independent[2]))


def test_families_without_solves_keep_batch_size_out_of_the_run():
    from pdesuite.datasets import get_family
    from pdesuite.datasets.generation.plan import batch_size_may_change_arrays

    for name in ("navier-stokes", "burgers"):
        family = get_family(name, resolution=16)
        for solver in ("recycle", {"method": "gmres", "tune": {"option": "omega", "tuner": "fixed",
                                                               "value": 1.0}, "M": "sor"}):
            assert not batch_size_may_change_arrays(
                family, resolve_solver_config(solver, spd=False)
            )
    recycle = resolve_solver_config("recycle", spd=True)
    assert batch_size_may_change_arrays(TinyHeatLockstep(6), recycle)
    assert not batch_size_may_change_arrays(TinyHeat(6), recycle)  # the default loop: in order
    assert batch_size_may_change_arrays(
        TinyHeatBatchDependent(6), resolve_solver_config("independent", spd=True)
    )

    # a batched family that declares no solves
    no_solves = TinyHeatLockstep(6)
    no_solves.batch_solves = False
    assert not batch_size_may_change_arrays(no_solves, recycle)


def test_batch_size_is_checked_and_capped_by_memory(tmp_path):
    from pdesuite.datasets import get_family
    from pdesuite.datasets.generation.plan import MAX_BATCH_BYTES, effective_batch_size

    family = _tiny_navier_stokes()
    for bad in (0, -2, 1.5, True, "8"):
        with pytest.raises(ValueError, match="batch_size"):
            generate(family, 2, tmp_path / "bad.h5", batch_size=bad, progress=False)
    assert effective_batch_size(family, None) == 64  # its default at 16²
    big = get_family("navier-stokes", resolution=256, final_time=20.0)  # 21 frames: 5.5 MB each
    trajectory_bytes = 4 * 21 * 256 * 256
    assert effective_batch_size(big, 1000) == MAX_BATCH_BYTES // trajectory_bytes == 48
    assert effective_batch_size(big, 3) == 3 and effective_batch_size(big, None) == 1


def test_interrupt_keeps_done_blocks_and_rerun_completes_identically(tmp_path):
    family = TinyDiffusion(8)
    reference = _arrays(
        generate(family, 12, tmp_path / "ref.h5", solver="recycle", chunk_size=3, progress=False)
    )
    # Interrupt while the third block (positions 6..8) is being solved.
    victim = int(reference["solve_order"][7])
    TinyDiffusion.interrupt_at = float(reference["parameters/shift"][victim])
    out = tmp_path / "resumed.h5"
    try:
        with pytest.raises(KeyboardInterrupt):
            generate(family, 12, out, solver="recycle", chunk_size=3, progress=False)
    finally:
        TinyDiffusion.interrupt_at = None
    parts = tmp_path / "resumed.h5.parts"
    assert sorted(p.name for p in parts.glob("block_*")) == ["block_000000.h5", "block_000001.h5"]
    assert not list(parts.glob("*.tmp")) and not out.exists()
    generate(family, 12, out, solver="recycle", chunk_size=3, progress=False)
    _assert_bitwise_equal(reference, _arrays(out))
    assert not parts.exists()


def test_partial_run_of_another_configuration_is_refused(tmp_path):
    family = TinyDiffusion(6, fail_at=None)
    shifts = [float(family.sample(np.random.default_rng([0, i]))["shift"]) for i in range(6)]
    failing = TinyDiffusion(6, fail_at=shifts[4])
    out = tmp_path / "x.h5"
    with pytest.raises(RuntimeError, match="on purpose"):
        generate(failing, 6, out, order="given", chunk_size=2, progress=False)
    plan = tmp_path / "x.h5.parts" / "plan.json"
    assert plan.exists() and (tmp_path / "x.h5.parts" / "block_000001.h5").exists()
    with pytest.raises(ValueError, match="plan.json") as error:
        generate(failing, 6, out, order="given", chunk_size=2, seed=1, progress=False)
    assert "seed: 0 -> 1" in str(error.value)
    # overwrite=True discards the partial run.
    generate(family, 6, out, order="given", chunk_size=2, overwrite=True, progress=False)
    assert _arrays(out)["solver/converged"].all()


def test_existing_output(tmp_path):
    family = TinyDiffusion(6)
    out = generate(family, 4, tmp_path / "e.h5", progress=False)
    stamp = out.stat().st_mtime_ns
    assert generate(family, 4, out, progress=False) == out  # the same run: nothing to do
    assert out.stat().st_mtime_ns == stamp
    with pytest.raises(ValueError, match="another dataset"):
        generate(family, 5, out, progress=False)


def test_bad_arguments(tmp_path):
    family = TinyDiffusion(6)
    with pytest.raises(ValueError, match="n:"):
        generate(family, 0, tmp_path / "a.h5")
    with pytest.raises(ValueError, match="order"):
        generate(family, 3, tmp_path / "a.h5", order="backwards")
    with pytest.raises(ValueError, match="workers"):
        generate(family, 3, tmp_path / "a.h5", workers=0)
    with pytest.raises(ValueError, match="solver"):
        generate(family, 3, tmp_path / "a.h5", solver="fast")
    with pytest.raises(TypeError, match="M"):
        generate(family, 3, tmp_path / "a.h5", solver={"method": "cg", "M": np.eye(3)})
    with pytest.raises(TypeError, match="family"):
        generate(object(), 3, tmp_path / "a.h5")
    with pytest.raises(ValueError, match="rcg"):
        resolve_solver_config({"method": "rcg"}, spd=False)
    assert resolve_solver_config("recycle", spd=False)["method"] == "gcrodr"
    assert resolve_solver_config("independent", spd=True)["method"] == "cg"


def test_recycle_configuration_uses_the_method_option_names():
    from pdesuite.solvers.vocabulary import METHOD_DEFAULTS

    gcrodr = resolve_solver_config("recycle", spd=False)
    assert (gcrodr["restart"], gcrodr["k"]) == (METHOD_DEFAULTS["gcrodr"]["restart"],
                                                METHOD_DEFAULTS["gcrodr"]["k"]) == (40, 20)
    rcg = resolve_solver_config("recycle", spd=True)
    assert (
        (rcg["k"], rcg["ell"])
        == (METHOD_DEFAULTS["rcg"]["k"], METHOD_DEFAULTS["rcg"]["ell"])
        == (20, None)
    )
    assert "m" not in gcrodr and "m" not in rcg and "restart" not in rcg and "ell" not in gcrodr
    config = resolve_solver_config(
        {
            "method": "gcrodr",
            "restart": 30,
            "k": 10,
            "side": "left",
            "reorthogonalize": "always",
            "update_period": 2,
            "solutions": 0,
        },
        spd=False,
    )
    assert (
        config["restart"],
        config["k"],
        config["side"],
        config["reorthogonalize"],
        config["update_period"],
        config["solutions"],
        config["options"],
    ) == (30, 10, "left", "always", 2, 0, {})
    assert resolve_solver_config({"method": "rcg", "ell": 24}, spd=True)["ell"] == 24
    for method in ("gcrodr", "rcg", "gmres"):
        with pytest.raises(ValueError, match=r"'m'.*'restart'.*gcrodr.*'ell'.*rcg"):
            resolve_solver_config({"method": method, "m": 40}, spd=True)
    with pytest.raises(ValueError, match="'ell' is not an option of method 'gcrodr'"):
        resolve_solver_config({"method": "gcrodr", "ell": 40}, spd=False)
    with pytest.raises(ValueError, match="'restart' is not an option of method 'rcg'"):
        resolve_solver_config({"method": "rcg", "restart": 40}, spd=True)


def test_cli_recycling_options(tmp_path, capsys):
    FAMILIES[TinyDiffusion.name] = TinyDiffusion
    try:
        for method, option, value in (("gcrodr", "--restart", 12), ("rcg", "--ell", 12)):
            out = tmp_path / f"{method}.h5"
            assert (
                cli_generate(
                    [
                        TinyDiffusion.name, "--n", "3", "--resolution", "6", "--out", str(out),
                        "--no-progress", "--method", method, option, str(value), "--k", "4",
                    ]
                )
                == 0
            )
            with open_dataset(out) as handle:
                config = json.loads(handle.attrs["solver_config"])
            assert config["method"] == method and config[option[2:]] == value and config["k"] == 4
        capsys.readouterr()
        with pytest.raises(SystemExit):
            cli_generate(
                [TinyDiffusion.name, "--out", str(tmp_path / "m.h5"), "--no-progress", "--m", "12"]
            )
        assert "--m" in capsys.readouterr().err
    finally:
        del FAMILIES[TinyDiffusion.name]


def test_cli_generate(tmp_path, capsys):
    FAMILIES[TinyDiffusion.name] = TinyDiffusion
    try:
        out = tmp_path / "cli.h5"
        code = cli_generate([TinyDiffusion.name, "--n", "4", "--resolution", "6", "--out", str(out),
                             "--no-progress", "--set", "modes=2", "--pc", "jacobi"])
        assert code == 0
        assert "4 samples" in capsys.readouterr().out
        with open_dataset(out) as handle:
            assert '"modes": 2' in handle.attrs["config"]
            assert '"M": "jacobi"' in handle.attrs["solver_config"]
        assert (
            cli_generate(["no-such-family", "--out", str(tmp_path / "z.h5"), "--no-progress"]) == 1
        )
    finally:
        del FAMILIES[TinyDiffusion.name]


def wait_for_blocks(process, parts, count, timeout=60.0):
    """Wait until ``parts`` holds ``count`` finished shards, while ``process`` runs."""
    deadline = time.monotonic() + timeout
    while len(list(parts.glob("block_*.h5"))) < count:
        assert process.poll() is None, "the run ended before it could be stopped"
        assert time.monotonic() < deadline, "no blocks were written in time"
        time.sleep(0.02)


_KILLED_RUN = textwrap.dedent("""
    import sys
    from tests.datasets.test_generate import TinyDiffusion
    from pdesuite.datasets.generation import generate
    if __name__ == "__main__":
        generate(TinyDiffusion(8), 24, sys.argv[1], solver="recycle", chunk_size=2,
                 workers=int(sys.argv[2]), progress=False)
""")


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_resume_after_sigkill(tmp_path, workers):
    family = TinyDiffusion(8)
    reference = _arrays(
        generate(family, 24, tmp_path / "ref.h5", solver="recycle", chunk_size=2, progress=False)
    )
    script = tmp_path / "run.py"
    script.write_text(_KILLED_RUN)
    out = tmp_path / "killed.h5"
    parts = tmp_path / "killed.h5.parts"
    env = {**os.environ, "TINY_DELAY": "0.05", "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, str(script), str(out), str(workers)], cwd=REPO, env=env
    )
    try:
        wait_for_blocks(process, parts, 3)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
    done = len(list(parts.glob("block_*.h5")))
    assert 3 <= done < 12 and not out.exists()
    generate(family, 24, out, solver="recycle", chunk_size=2, progress=False)
    _assert_bitwise_equal(reference, _arrays(out))
    assert set(SOLVER_STATS) <= {
        name.split("/")[1] for name in reference if name.startswith("solver/")
    } | {"time"}


_MPI_RUN = textwrap.dedent("""
    import sys
    from mpi4py import MPI
    from tests.datasets.test_generate import TinyDiffusion
    from pdesuite.datasets.generation import generate
    if __name__ == "__main__":
        generate(TinyDiffusion(8), 12, sys.argv[1], solver="recycle", chunk_size=3, progress=False,
                 comm=MPI.COMM_WORLD)
""")


@pytest.mark.mpi
@pytest.mark.slow
def test_mpiexec_two_ranks_match_one_process(tmp_path):
    import shutil

    pytest.importorskip("mpi4py")
    mpiexec = shutil.which("mpiexec")
    if mpiexec is None:
        pytest.skip("mpiexec not found")
    script = tmp_path / "mpi_run.py"
    script.write_text(_MPI_RUN)
    out = tmp_path / "mpi.h5"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    run = subprocess.run([mpiexec, "-n", "2", sys.executable, str(script), str(out)], cwd=REPO,
                         env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    reference = generate(
        TinyDiffusion(8), 12, tmp_path / "ref.h5", solver="recycle", chunk_size=3, progress=False
    )
    _assert_bitwise_equal(_arrays(reference), _arrays(out))
