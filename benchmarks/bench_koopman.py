"""Koopman operators: parity with PyDMD, certificates on Duffing, forecasts of Burgers and NS.

Three parts, each in its own section of the JSON:

1. **PyDMD parity** (PyDMD 2025.8.1 is not a dependency: ``make bench-deps`` installs it,
   with scikit-learn and what that imports, without torch, into ``.bench-deps/``, which only
   this script puts on ``sys.path``; the part is skipped and says so without it). The same
   answers on the same data, eigenvalues matched one to one (an assignment minimising the
   distances) and the largest distance reported, with the best of 3 fit times:

   - EDMD on the linear map ``J = [[0.9, −0.1], [0, 0.8]]`` (PyDMD's own closed-form test):
     ours with all monomials of degree <= 4 and our kernel EDMD with ``(1 + x·y)^4``, against
     PyDMD's ``EDMD`` with the polynomial kernel (``gamma=1, coef0=1, degree=4``,
     ``svd_rank=15``) and the closed form ``0.9^i 0.8^j``, ``i + j <= 4``;
   - kernel EDMD with a Gaussian kernel (rank 40) on Duffing pairs, against PyDMD's ``EDMD``
     with ``"rbf"`` (``gamma = 1/(2ℓ²)``);
   - DMD (ours: ``EDMD(rank=r)``) on the Burgers pairs, against PyDMD's ``DMD`` fitted on the
     same pairs (``fit(X, Y)``);
   - Hankel DMD on one Burgers trajectory, against PyDMD's ``HankelDMD`` (same ``d``, rank).

2. **Duffing** ``x'' = x − x³`` (Colbrook's example): 1,000 initial conditions uniform on
   ``[−2, 2]²``, 50 steps of ``Δt = 0.25`` each (scipy ``solve_ivp``, DOP853, rtol 1e-12,
   atol 1e-12), EDMD with 100 radial basis functions ``exp(−r/w)`` at k-means centres (no
   state columns). Reported: the eigenvalues with their ResDMD residuals, how many fail a
   certificate at ``ε`` = 0.01, 0.05, 0.1, the pseudospectrum ``τ(z)`` on a grid of
   ``[−1.5, 1.5]²`` (plot ``benchmarks/results/koopman_duffing.png``), the verified spectrum
   with the measure-preserving lower bound (the flow is Hamiltonian) and its bound, and
   mpEDMD's eigenvalues for comparison.

3. **Forecasts** of generated trajectories, split by trajectory (a quarter held out, seeded):
   Burgers 1D (``nu`` 0.02, 64 points, 41 frames 0.05 apart) and Navier–Stokes on the 64²
   torus (``nu`` 1e-3, FNO's forcing, ``dt`` 1e-3, frames 1.0 apart). CPU-sized: 64 Burgers
   and 24 NS trajectories (21 frames, t = 0..20), where FNO's data have 1,000 of 50 frames.
   Every estimator starts from the frame ``D − 1`` of each test trajectory (``D = 4``, the Hankel
   window; the others from that one frame) and runs to the last frame; the relative L2 error
   per step (mean over test trajectories) is reported against the horizon for persistence,
   DMD, EDMD with 100 RBFs, kernel EDMD (Gaussian), Hankel DMD, mpEDMD, the deep Koopman
   autoencoder, the certified forecasts (eigenpairs with residual <= ``ε``) of the EDMD
   variants, and an autoregressive FNO (:class:`pdesuite.dynamics.autoregressive.
   AutoregressiveOperator`, trained by the Trainer on the same consecutive frames). Plot:
   ``benchmarks/results/koopman_forecasts.png``.

    python benchmarks/bench_koopman.py [--quick] [--readme] [--threads 1]

``--quick`` shrinks every part (a check that the script runs, seconds); results go to
``benchmarks/results/koopman.json`` (``koopman_quick.json``); ``--readme`` writes the table into
benchmarks/README.md. One thread for torch and the BLAS unless ``--threads``.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable

# before NumPy loads (inside the functions): _common pins the BLAS threads
from _common import (
    ROOT,
    RESULTS,
    best_of,
    load_average,
    markdown_table,
    update_readme_section,
    write_results,
)

BENCH_DEPS = ROOT / ".bench-deps"
DATA_DIR = ROOT / "out" / "bench_koopman"
J = [[0.9, -0.1], [0.0, 0.8]]
DELAYS = 4
EPSILONS = (0.01, 0.05, 0.1)

FULL = {
    "linear_map": {"n": 200, "steps": 10},
    "duffing": {"n": 1000, "steps": 50, "centres": 100, "grid": 121, "kernel_pairs": 2000},
    "burgers": {"n": 64, "resolution": 64, "final_time": 2.0, "record_interval": 0.05,
                "nu": 0.02},
    "navier_stokes": {"n": 24, "resolution": 64, "final_time": 20.0, "record_interval": 1.0,
                      "nu": 1e-3, "dt": 1e-3},
    "deep_epochs": 300,
    "fno": {"epochs": 60, "model_config": {"modes": 12, "width": 24, "layers": 4}},
    "fno_ns": {"epochs": 30, "model_config": {"modes": 12, "width": 16, "layers": 4}},
}
QUICK = {
    "linear_map": {"n": 50, "steps": 4},
    "duffing": {"n": 100, "steps": 10, "centres": 30, "grid": 31, "kernel_pairs": 300},
    "burgers": {"n": 12, "resolution": 32, "final_time": 0.5, "record_interval": 0.05,
                "nu": 0.05},
    "navier_stokes": {"n": 6, "resolution": 16, "final_time": 8.0, "record_interval": 1.0,
                      "nu": 1e-3, "dt": 1e-3},
    "deep_epochs": 5,
    "fno": {"epochs": 2, "model_config": {"modes": 4, "width": 8, "layers": 1}},
    "fno_ns": {"epochs": 2, "model_config": {"modes": 4, "width": 8, "layers": 1}},
}


# --------------------------------------------------------------------------------- helpers
def matched_distance(ours, theirs) -> float:
    """Largest ``|λ_i − μ_π(i)|`` over the assignment ``π`` that minimises the total distance
    (inf when the counts differ)."""
    import numpy as np
    from scipy.optimize import linear_sum_assignment

    ours, theirs = np.asarray(ours), np.asarray(theirs)
    if len(ours) != len(theirs):
        return float("inf")
    cost = np.abs(ours[:, None] - theirs[None, :])
    rows, columns = linear_sum_assignment(cost)
    return float(cost[rows, columns].max())


def import_pydmd():
    """``pydmd``, from the environment or else from ``.bench-deps/`` (``make bench-deps``),
    appended last to ``sys.path`` so that it can never shadow a package of the venv."""
    if BENCH_DEPS.is_dir() and str(BENCH_DEPS) not in sys.path:
        sys.path.append(str(BENCH_DEPS))
    import pydmd

    return pydmd


def timed(fit: Callable[[], Any], repeats: int = 3) -> tuple[Any, float]:
    """``(fit(), best of repeats wall seconds)``."""
    result = {}

    def run() -> None:
        result["value"] = fit()

    seconds = best_of(run, repeats)
    return result["value"], seconds


def say(message: str) -> None:
    print(message, flush=True)


# ------------------------------------------------------------------------------------ data
def linear_map_pairs(n: int, steps: int):
    """Pairs ``(X, Y)`` ``[m, 2]`` of ``x -> J x`` from uniform initial states on [−1, 1]²."""
    import numpy as np

    from pdesuite.dynamics.koopman import snapshot_pairs

    states = [np.random.default_rng(0).uniform(-1.0, 1.0, (n, 2))]
    for _ in range(steps):
        states.append(states[-1] @ np.array(J).T)
    return snapshot_pairs(np.stack(states, axis=1))


def duffing_trajectories(n: int, steps: int, dt: float = 0.25):
    """``[n, steps + 1, 2]`` states ``(x, x')`` of ``x'' = x − x³`` from uniform ICs on
    [−2, 2]², integrated together (one system of 2n decoupled equations)."""
    import numpy as np
    from scipy.integrate import solve_ivp

    initial = np.random.default_rng(0).uniform(-2.0, 2.0, (n, 2))

    def field(_, y):
        x, v = y[:n], y[n:]
        return np.concatenate([v, x - x ** 3])

    times = dt * np.arange(steps + 1)
    solution = solve_ivp(field, (0.0, times[-1]), initial.T.reshape(-1), method="DOP853",
                         t_eval=times, rtol=1e-12, atol=1e-12)
    if not solution.success:
        raise RuntimeError(f"solve_ivp: {solution.message}")
    return np.stack([solution.y[:n], solution.y[n:]], axis=2)  # [n, T, 2]


def generated(family: str, settings: dict[str, Any], tag: str):
    """Trajectories of a generated file under out/bench_koopman/ (reused when it exists)."""
    from pdesuite.datasets import generate
    from pdesuite.dynamics.koopman import read_trajectories

    options = {key: value for key, value in settings.items() if key != "n"}
    name = "_".join(f"{key}{value}" for key, value in sorted(options.items()))
    path = DATA_DIR / f"{family}_{tag}_{settings['n']}_{name}.h5"
    if not path.is_file():
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        generate(family, settings["n"], path, progress=False, seed=0, **options)
        say(f"  generated {path.name} in {time.perf_counter() - started:.0f} s")
    return read_trajectories(path).trajectories


# ------------------------------------------------------------------------ part 1: parity
def parity(sizes: dict[str, Any], burgers) -> dict[str, Any]:
    import numpy as np

    from pdesuite.dynamics.koopman import EDMD, HankelDMD, KernelEDMD, Monomials, snapshot_pairs

    # PyDMD warns about the condition number of every snapshot matrix; the comparison is the
    # point here, not its advice
    warnings.filterwarnings("ignore", category=UserWarning, module="pydmd")
    try:
        pydmd = import_pydmd()
    except ImportError as error:
        return {"skipped": f"PyDMD is not importable ({error}); `make bench-deps` installs it "
                           "into .bench-deps/"}
    rows = []

    def row(case, ours_label, ours, ours_s, theirs, theirs_s, reference=None):
        entry = {"case": case, "ours": ours_label, "n_eigenvalues": int(len(ours)),
                 "max_difference": matched_distance(ours, theirs), "ours_seconds": ours_s,
                 "pydmd_seconds": theirs_s}
        if reference is not None:
            entry["ours_vs_closed_form"] = matched_distance(ours, reference)
            entry["pydmd_vs_closed_form"] = matched_distance(theirs, reference)
        rows.append(entry)
        say(f"  {case} / {ours_label}: max |Δλ| {entry['max_difference']:.2e} "
            f"(ours {ours_s * 1e3:.1f} ms, PyDMD {theirs_s * 1e3:.1f} ms)")

    # EDMD on the linear map, against the closed form
    pairs = linear_map_pairs(**sizes["linear_map"])
    closed = np.array([0.9 ** i * 0.8 ** j for i in range(5) for j in range(5) if i + j <= 4])
    poly = {"degree": 4, "coef0": 1.0, "gamma": 1.0}
    theirs, theirs_s = timed(lambda: pydmd.EDMD(svd_rank=15, kernel_metric="poly",
                                                kernel_params=poly).fit(pairs.X.T, pairs.Y.T))
    ours, ours_s = timed(lambda: EDMD(Monomials(4)).fit(pairs))
    row("linear map J, degree 4", "EDMD, monomials", ours.eigenvalues, ours_s, theirs.eigs,
        theirs_s, closed)
    ours, ours_s = timed(lambda: KernelEDMD("polynomial", degree=4, rank=15).fit(pairs))
    row("linear map J, degree 4", "kernel EDMD, polynomial", ours.eigenvalues, ours_s,
        theirs.eigs, theirs_s, closed)

    # Gaussian kernel EDMD on Duffing pairs
    duffing = duffing_trajectories(sizes["duffing"]["kernel_pairs"] // 5, 5)
    pairs = snapshot_pairs(duffing)
    lengthscale = 1.0
    theirs, theirs_s = timed(lambda: pydmd.EDMD(
        svd_rank=40, kernel_metric="rbf",
        kernel_params={"gamma": 1.0 / (2 * lengthscale ** 2)}).fit(pairs.X.T, pairs.Y.T))
    ours, ours_s = timed(lambda: KernelEDMD("gaussian", lengthscale=lengthscale,
                                            rank=40).fit(pairs))
    row(f"Duffing, {pairs.n_pairs} pairs", "kernel EDMD, Gaussian, rank 40", ours.eigenvalues,
        ours_s, theirs.eigs, theirs_s)

    # DMD on the Burgers pairs (all trajectories), and Hankel DMD on one trajectory
    pairs = snapshot_pairs(burgers)
    theirs, theirs_s = timed(lambda: pydmd.DMD(svd_rank=20, exact=True).fit(pairs.X.T,
                                                                            pairs.Y.T))
    ours, ours_s = timed(lambda: EDMD(rank=20).fit(pairs))
    row(f"Burgers, {pairs.n_pairs} pairs", "DMD, rank 20", ours.eigenvalues, ours_s,
        theirs.eigs, theirs_s)
    trajectory = burgers[0].reshape(burgers.shape[1], -1)  # [T, d]
    rank = min(12, len(trajectory) - DELAYS - 3)
    theirs, theirs_s = timed(lambda: pydmd.HankelDMD(svd_rank=rank, d=DELAYS).fit(trajectory.T))
    ours, ours_s = timed(lambda: HankelDMD(delays=DELAYS, rank=rank).fit(trajectory[None]))
    row(f"Burgers, one trajectory of {len(trajectory)} frames",
        f"Hankel DMD, d {DELAYS}, rank {rank}", ours.eigenvalues, ours_s, theirs.eigs, theirs_s)
    from importlib.metadata import version

    return {"pydmd_version": version("pydmd"), "rows": rows}


# ----------------------------------------------------------------------- part 2: Duffing
def duffing_part(sizes: dict[str, Any], figure_path: Path) -> dict[str, Any]:
    import numpy as np

    from pdesuite.dynamics.koopman import EDMD, MeasurePreservingEDMD, RadialBasis

    started = time.perf_counter()
    trajectories = duffing_trajectories(sizes["n"], sizes["steps"])
    integrate_s = time.perf_counter() - started
    dictionary = RadialBasis(sizes["centres"], kernel="exponential", include_state=False)
    model, fit_s = timed(lambda: EDMD(dictionary).fit(trajectories), repeats=1)
    values, residuals = model.eigenvalues, model.residuals
    failing = {str(eps): int(np.sum(residuals > eps)) for eps in EPSILONS}
    say(f"  Duffing: {trajectories.shape[0]} ICs x {trajectories.shape[1] - 1} steps "
        f"(integrated in {integrate_s:.1f} s), {len(values)} EDMD eigenvalues (fit "
        f"{fit_s:.1f} s); failing their certificate: {failing}")
    axis = np.linspace(-1.5, 1.5, sizes["grid"])
    grid = axis[None, :] + 1j * axis[:, None]
    started = time.perf_counter()
    verified = model.verified_spectrum(grid, measure_preserving=True)
    pseudo_s = time.perf_counter() - started
    tau = model.pseudospectrum(grid)
    mp = MeasurePreservingEDMD(dictionary).fit(trajectories)
    say(f"  pseudospectrum on {grid.size} points in {pseudo_s:.1f} s; verified spectrum: "
        f"{len(verified.points)} points, bound {verified.bound:.3g}")
    plot_duffing(figure_path, axis, tau, values, residuals, verified)
    return {
        "initial_conditions": int(trajectories.shape[0]), "steps": int(trajectories.shape[1] - 1),
        "dt": 0.25, "dictionary": f"{sizes['centres']} RBFs exp(-r/w), k-means centres, "
                                  f"w = {model.dictionary_.width_:.4g}",
        "integrate_seconds": integrate_s, "fit_seconds": fit_s,
        "eigenvalues": {"real": values.real.tolist(), "imag": values.imag.tolist()},
        "residuals": residuals.tolist(),
        "failing_certificate": failing, "n_eigenvalues": int(len(values)),
        "max_modulus": float(np.abs(values).max()),
        "residual_quantiles": {q: float(np.quantile(residuals, float(q)))
                               for q in ("0.1", "0.5", "0.9")},
        "pseudospectrum": {"grid": [float(axis[0]), float(axis[-1]), int(len(axis))],
                           "seconds": pseudo_s, "min_tau": float(tau.min())},
        "verified_spectrum": {"points": int(len(verified.points)), "bound": verified.bound,
                              "moduli": np.sort(np.abs(verified.points)).tolist()},
        "mpedmd_max_abs_modulus_minus_1": float(np.abs(np.abs(mp.eigenvalues) - 1).max()),
        "figure": str(figure_path.relative_to(ROOT)) if figure_path.is_relative_to(ROOT)
        else str(figure_path),
    }


def plot_duffing(path: Path, axis, tau, values, residuals, verified) -> None:
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import LogNorm
    from matplotlib.figure import Figure

    figure = Figure(figsize=(11, 4.8), layout="constrained")
    FigureCanvasAgg(figure)
    left, right = figure.subplots(1, 2)
    levels = np.logspace(-3, 0, 13)
    contours = left.contourf(axis, axis, np.maximum(tau, 1e-3), levels=levels, norm=LogNorm(),
                             cmap="Greys_r")
    figure.colorbar(contours, ax=left, label="τ(z) (pseudospectrum)")
    circle = np.exp(2j * np.pi * np.linspace(0, 1, 400))
    for ax in (left, right):
        ax.plot(circle.real, circle.imag, color="tab:blue", linewidth=0.8)
        ax.set_aspect("equal")
        ax.set_xlabel("Re z")
    left.scatter(values.real, values.imag, s=8, color="red", label="EDMD eigenvalues")
    left.scatter(verified.points.real, verified.points.imag, s=10, marker="x", color="cyan",
                 label=f"verified (bound {verified.bound:.2g})")
    left.legend(loc="lower left", fontsize=8)
    left.set_ylabel("Im z")
    left.set_title("Duffing: pseudospectrum and EDMD eigenvalues")
    points = right.scatter(values.real, values.imag, c=np.maximum(residuals, 1e-6), s=14,
                           norm=LogNorm(), cmap="viridis")
    figure.colorbar(points, ax=right, label="ResDMD residual")
    right.set_title("EDMD eigenvalues coloured by residual")
    figure.savefig(path, dpi=110)


# --------------------------------------------------------------------- part 3: forecasts
def relative_l2(forecast, truth):
    """Mean over trajectories of ``‖f_t − x_t‖ / ‖x_t‖``, ``[steps + 1]``."""
    import numpy as np

    shape = (truth.shape[0], truth.shape[1], -1)
    return np.mean(np.linalg.norm((forecast - truth).reshape(shape), axis=2)
                   / np.linalg.norm(truth.reshape(shape), axis=2), axis=0)


def forecast_part(name: str, trajectories, sizes: dict[str, Any], fno: dict[str, Any],
                  estimators: dict[str, Callable[[], Any]], epsilon: float) -> dict[str, Any]:
    import numpy as np
    import torch

    from pdesuite.dynamics.autoregressive import AutoregressiveOperator
    from pdesuite.dynamics.koopman import train_test_split

    train, test = train_test_split(trajectories, test_fraction=0.25, seed=0)
    truth = test[:, DELAYS - 1:]
    steps = truth.shape[1] - 1
    curves = {"persistence": relative_l2(np.repeat(truth[:, :1], steps + 1, axis=1), truth)}
    details: dict[str, Any] = {}
    say(f"  {name}: {len(train)} train / {len(test)} test trajectories, state "
        f"{list(trajectories.shape[2:])}, {steps} steps")
    for label, build in estimators.items():
        model = build()
        started = time.perf_counter()
        model.fit(train)
        fit_s = time.perf_counter() - started
        x0 = test[:, :model.delays] if model.delays > 1 else test[:, DELAYS - 1]
        if model.delays > 1 and model.delays != DELAYS:
            raise ValueError("Hankel estimators here use the window DELAYS")
        curves[label] = relative_l2(model.predict(x0, steps), truth)
        moduli = np.abs(model.eigenvalues)
        details[label] = {"fit_seconds": fit_s, "max_modulus": float(moduli.max()),
                          "unstable_modes": int(np.sum(moduli > 1 + 1e-9))}
        if label.split(" ")[0] in ("DMD", "EDMD", "Hankel"):
            kept = model.certified(epsilon)
            curves[f"{label}, certified"] = relative_l2(
                model.predict(x0, steps, certified=epsilon), truth)
            details[label].update(certified=int(kept.sum()), of=int(len(kept)),
                                  certified_max_modulus=float(moduli[kept].max())
                                  if kept.any() else None)
        say(f"    {label}: final step {curves[label][-1]:.3g}, max |λ| {moduli.max():.4f} "
            f"({fit_s:.1f} s)")
    torch.manual_seed(0)
    started = time.perf_counter()
    operator = AutoregressiveOperator("fno", model_config=fno["model_config"],
                                      epochs=fno["epochs"], batch_size=20, lr=1e-3,
                                      step_size=max(1, fno["epochs"] // 3), seed=0).fit(train)
    fit_s = time.perf_counter() - started
    curves["autoregressive FNO"] = relative_l2(operator.predict(test[:, DELAYS - 1], steps), truth)
    details["autoregressive FNO"] = {"fit_seconds": fit_s, "epochs": fno["epochs"],
                                     "model_config": operator.model_.to_config(),
                                     "parameters": operator.model_.parameter_count()}
    say(f"    autoregressive FNO: final step {curves['autoregressive FNO'][-1]:.3g} "
        f"({fit_s:.0f} s)")
    return {"sizes": sizes, "train": int(len(train)), "test": int(len(test)), "steps": steps,
            "start_frame": DELAYS - 1, "epsilon": epsilon,
            "curves": {label: values.tolist() for label, values in curves.items()},
            "details": details}


def estimators_for(kind: str, deep_epochs: int, quick: bool) -> dict[str, Callable[[], Any]]:
    from pdesuite.dynamics.koopman import (
        EDMD,
        HankelDMD,
        KernelEDMD,
        MeasurePreservingEDMD,
        RadialBasis,
    )
    from pdesuite.dynamics.koopman.deep import DeepKoopman

    rank = 4 if quick else (20 if kind == "burgers" else 40)
    centres = 10 if quick else 100
    return {
        f"DMD (rank {rank})": lambda: EDMD(rank=rank),
        # NS: 100 RBFs next to 4,096 state values outnumber the pairs; truncated to the rank
        f"EDMD ({centres} RBFs{'' if kind == 'burgers' else f', rank {rank}'})":
            (lambda: EDMD(RadialBasis(centres), ridge=1e-8)) if kind == "burgers"
            else (lambda: EDMD(RadialBasis(centres), rank=rank)),
        f"kernel EDMD (Gaussian, rank {2 * rank})": lambda: KernelEDMD("gaussian",
                                                                       rank=2 * rank),
        f"Hankel DMD (d {DELAYS}, rank {2 * rank})": lambda: HankelDMD(delays=DELAYS,
                                                                       rank=2 * rank),
        f"mpEDMD (rank {rank})": lambda: MeasurePreservingEDMD(rank=rank),
        "deep Koopman (latent 32)": lambda: DeepKoopman(latent_dim=32, epochs=deep_epochs,
                                                        batch_size=64, seed=0, device="cpu"),
    }


def plot_forecasts(path: Path, parts: dict[str, dict[str, Any]]) -> None:
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(12, 4.8), layout="constrained")
    FigureCanvasAgg(figure)
    panels = figure.subplots(1, len(parts))
    for ax, (name, part) in zip(np.atleast_1d(panels), parts.items()):
        for label, values in part["curves"].items():
            style = "--" if "certified" in label else ("k:" if label == "persistence" else "-")
            steps = np.arange(1, len(values))
            ax.semilogy(steps, np.clip(values[1:], 1e-6, 1e6), style, label=label, linewidth=1.2)
        ax.set_title(name)
        ax.set_xlabel("step")
        ax.set_ylabel("relative L2 (mean over test trajectories)")
        ax.grid(True, which="both", alpha=0.3)
    np.atleast_1d(panels)[-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    figure.savefig(path, dpi=110)


# ------------------------------------------------------------------------------- report
def readme_text(results: dict[str, Any]) -> str:
    lines = []
    parity_part = results["parity"]
    if "rows" in parity_part:
        lines.append(f"Parity with PyDMD {parity_part['pydmd_version']} (`make bench-deps`), "
                     "eigenvalues matched one to one; fit times best of 3, one thread:\n")
        lines.append(markdown_table(
            ["data", "ours", "eigenvalues", "max abs(Δλ) vs PyDMD", "ours vs closed form",
             "PyDMD vs closed form", "fit ours / PyDMD (ms)"],
            [[r["case"], r["ours"], r["n_eigenvalues"], f"{r['max_difference']:.1e}",
              f"{r['ours_vs_closed_form']:.1e}" if "ours_vs_closed_form" in r else "-",
              f"{r['pydmd_vs_closed_form']:.1e}" if "pydmd_vs_closed_form" in r else "-",
              f"{r['ours_seconds'] * 1e3:.1f} / {r['pydmd_seconds'] * 1e3:.1f}"]
             for r in parity_part["rows"]]))
    else:
        lines.append(f"PyDMD parity skipped: {parity_part['skipped']}")
    duffing = results["duffing"]
    failing = duffing["failing_certificate"]
    lines.append(
        f"\nDuffing (x'' = x − x³, {duffing['initial_conditions']} initial conditions on "
        f"[−2, 2]², {duffing['steps']} steps of Δt = 0.25, {duffing['dictionary']}): of the "
        f"{duffing['n_eigenvalues']} EDMD eigenvalues, "
        + ", ".join(f"{count} fail their certificate at ε = {eps}"
                    for eps, count in failing.items())
        + f" (median residual {duffing['residual_quantiles']['0.5']:.2g}; max |λ| "
        f"{duffing['max_modulus']:.4f}). Verified spectrum (measure-preserving lower bound, "
        f"local minimisers within 5τ): {duffing['verified_spectrum']['points']} grid points, "
        f"bound {duffing['verified_spectrum']['bound']:.3g}; mpEDMD's eigenvalues lie on the "
        f"unit circle to {duffing['mpedmd_max_abs_modulus_minus_1']:.1e}.\n\n"
        f"![Duffing pseudospectrum]({duffing['figure']})\n")
    for name, part in results["forecasts"].items():
        curves = part["curves"]
        steps = part["steps"]
        horizons = sorted({1, max(1, steps // 4), max(1, steps // 2), steps})
        lines.append(f"\n{name}: {part['train']} train / {part['test']} test trajectories, "
                     f"{steps} steps from frame {part['start_frame']}; relative L2 (mean over "
                     f"test trajectories); certified: eigenpairs with residual <= "
                     f"{part['epsilon']}:\n")
        rows = []
        for label, values in curves.items():
            detail = part["details"].get(label, {})
            unstable = detail.get("unstable_modes", "-")
            kept = (f"{detail['certified']}/{detail['of']}" if "certified" in detail else "-")
            rows.append([label, *[f"{values[h]:.3g}" for h in horizons],
                         f"{sum(values[1:]) / steps:.3g}", unstable, kept])
        lines.append(markdown_table(
            ["model", *[f"step {h}" for h in horizons], "mean over steps", "modes abs(λ) > 1",
             "certified"], rows))
    lines.append(f"\n![forecast errors]({results['forecast_figure']})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the script runs")
    parser.add_argument("--readme", action="store_true",
                        help="write the table into benchmarks/README.md")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    sizes = QUICK if args.quick else FULL
    suffix = "_quick" if args.quick else ""
    RESULTS.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    results: dict[str, Any] = {"quick": args.quick, "load_average_before": load_average(),
                               "torch_threads": torch.get_num_threads(), "sizes": sizes}
    tag = "quick" if args.quick else "full"
    say("data")
    burgers = generated("burgers", sizes["burgers"], tag)
    say("PyDMD parity")
    results["parity"] = parity(sizes, burgers)
    say("Duffing")
    results["duffing"] = duffing_part(sizes["duffing"], RESULTS / f"koopman_duffing{suffix}.png")
    say("forecasts")
    navier_stokes = generated("navier-stokes", sizes["navier_stokes"], tag)
    ns_name = f"Navier–Stokes {sizes['navier_stokes']['resolution']}²"
    burgers_name = f"Burgers 1D ({sizes['burgers']['resolution']} points)"
    results["forecasts"] = {
        burgers_name: forecast_part(
            burgers_name, burgers, sizes["burgers"], sizes["fno"],
            estimators_for("burgers", sizes["deep_epochs"], args.quick), epsilon=0.05),
        ns_name: forecast_part(
            ns_name, navier_stokes, sizes["navier_stokes"], sizes["fno_ns"],
            estimators_for("navier-stokes", sizes["deep_epochs"], args.quick), epsilon=0.1),
    }
    figure = RESULTS / f"koopman_forecasts{suffix}.png"
    plot_forecasts(figure, results["forecasts"])
    results["forecast_figure"] = (str(figure.relative_to(ROOT)) if figure.is_relative_to(ROOT)
                                  else str(figure))
    results["seconds"] = time.perf_counter() - started
    results["load_average_after"] = load_average()
    text = readme_text(results)
    results["table"] = text
    path = write_results(f"koopman{suffix}", results)
    print("\n" + text)
    print(f"\nwrote {path} in {results['seconds']:.0f} s")
    if args.readme and not args.quick:
        update_readme_section("bench-koopman", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
