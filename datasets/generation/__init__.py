"""Dataset generation: draw, sort, solve, store; resumable, parallel and deterministic.

``generate(family, n, out=...)`` runs these steps:

1. **Plan.** Sample ``i`` is drawn by ``family.sample(np.random.default_rng([seed, i]))``, so it
   is the same whatever the order or the number of workers. For ``order="sorted"`` the sort key
   of every sample is drawn and the samples are ordered (:mod:`.sorting`; the sorting time is
   recorded apart from the solve time). With ``solver="auto"`` (the default) the candidate
   solvers are timed on the first samples of that order and the fastest is chosen
   (:mod:`.solver_choice`). The order and the solver are saved in ``<out>.parts/``.
2. **Blocks.** The solve order is cut into fixed blocks of ``chunk_size`` consecutive samples.
   Each block is solved from a *fresh* solver. With ``solver="recycle"`` one
   :class:`RecyclingSolver` (``"rcg"`` on SPD families, ``"gcrodr"`` otherwise) carries its
   recycle space from one sample to the next *within* the block, and forgets it at the block's
   end. With ``solver="direct"`` the block's solver is one
   :class:`~pdesuite.solvers.DirectSolver`, which analyses the sparsity pattern the block's
   matrices share once and refactors the values of each sample (the arrays do not depend on
   that reuse: the analysis is a function of the pattern alone).
3. **Workers.** The blocks still to do are split into ``workers`` contiguous runs of the sorted
   order, one process each (``spawn`` context); with ``workers=1`` everything runs in this
   process. Each finished block is one shard file ``<out>.parts/block_XXXXXX.h5``, written
   under a temporary name and renamed into place, so it is atomic.
4. **Merge.** The shards are copied into ``<out>.tmp`` with every sample at its original index
   ``i``, which is then renamed to ``out``, and ``<out>.parts/`` is removed.

Why blocks, and not one solver per worker: a recycled Krylov solution depends, in its last
bits, on the recycle space it started from, that is on every system solved before it by the
same solver. If a worker's solver ran across its whole share, the arrays would depend on the
number of workers. With fixed blocks, every sample sees the same predecessors whatever the
worker count, so **the same seed gives bitwise-identical arrays for any ``workers``**, and a
resumed run equals an uninterrupted one. The price is one cold solve per block; with the
default ``chunk_size=256`` that is under 1% of the solves. (Determinism assumes the same
machine and BLAS settings; BLAS libraries may round differently elsewhere.)

Resuming: rerun the same call. Shards already on disk are kept (a shard is checked before it
is trusted), leftover temporary files are removed, and only missing blocks are solved. A
different configuration (family, its config, n, seed, order, solver, chunk size ...) against
an existing partial run raises ValueError naming the plan file. A SIGKILL at any point loses
at most the blocks in flight. Worker processes notice when their parent dies and stop; they
ignore Ctrl-C, which the parent handles (it stops them and releases its lock).

Checks first: every argument, the solver's options included (its block solver is built and
run on a small test system), is checked before anything is written, and a run that fails
before its first block is finished removes the ``<out>.parts/`` it created, so that a
corrected call is not taken for a partial run of another configuration.

Per sample the solver statistics go to ``solver/`` (see :mod:`.storage`); a sample whose solve
did not converge is stored with ``converged=False`` and its reason, never dropped, and
:func:`generate` says so with a :class:`FailedSolvesWarning` (``pdesuite generate`` exits with
status 2).

Tuning (``solver={..., "tune": "omega"}``, CLI ``--tune omega``; :func:`resolve_tune_config`):
a bandit of :mod:`pdesuite.solvers.tuning` chooses SOR/SSOR's ω (or the recycled dimension k)
for every linear solve and learns from its iteration count, as in *Learning to Relax*. Like the
recycle space, **the tuner is created fresh for every block and learns within the block only**:
it is seeded from ``(seed, block)``, so its choices, and so the arrays, are the same for any
worker count and after a resume. With few samples per block it has little to learn from; a
larger ``chunk_size`` gives it more. The value chosen for each sample is stored in
``solver/omega`` (or ``solver/k``; float64, the mean over the solves of a trajectory), and
the tune configuration is part of ``solver_config`` in the root attributes, so it is checked
on resume like the rest.

Time-dependent families (``family.time_dependent``) are run ``batch_size`` samples at a time
through ``family.simulate_batch(params_list, solves)`` (:meth:`PDEFamily.simulate_batch`; its
default loops over ``family.simulate``), with one ``solve(A, b, x0=None)`` per sample: all of
them are the block's one solver, each recording its own sample's statistics. The statistics of
all the calls within a trajectory are summed (iterations, matvecs, time), or the worst kept
(residual, reason). Trajectories are stored as ``trajectories [n, T, C, *spatial]``. A batch is
consecutive samples of one block (the block stays the atomic unit of writing and resuming),
so it is a function of the plan only. A family that steps a batch together (``navier-stokes``)
returns bitwise what it returns sample by sample (``family.batch_invariant``), so
``batch_size`` changes the speed, not the arrays; for a family that declares otherwise, the
batch size becomes part of the run configuration. So it does, to be safe, for a family whose
own ``simulate_batch`` uses its ``solve`` argument when the solver keeps state (recycling or a
tuner): the samples of a batch share that solver, and solves interleaved across them would
make the arrays depend on the batch (see :func:`_batch_size_may_change_arrays`; families with
no linear solves, and the default sample-by-sample loop, are unaffected). Default batch size:
``family.default_batch_size`` (1 for families that only loop), cut so that a batch's
trajectories stay within 256 MiB of float32.

Modules, in the order a run uses them: :mod:`.solver_config` (what ``solver=`` resolves to),
:mod:`.tuning` (the tuner of a block), :mod:`.solver_choice` (``solver="auto"``), :mod:`.plan`
(the solve order and ``<out>.parts/``), :mod:`.blocks` (solving a block), :mod:`.shards` (its
file), :mod:`.workers` (processes), :mod:`.output` (the merged file), :mod:`.api`
(:func:`generate`), :mod:`.cli` (``pdesuite generate``).
"""

from pdesuite.datasets.generation.api import (
    DEFAULT_CHUNK_SIZE,
    GENERATION_SORT_METHODS,
    ORDERS,
    generate,
)
from pdesuite.datasets.generation.cli import add_arguments, cli_generate, run
from pdesuite.datasets.generation.output import FailedSolvesWarning
from pdesuite.datasets.generation.plan import MAX_BATCH_BYTES
from pdesuite.datasets.generation.solver_config import resolve_solver_config
from pdesuite.datasets.generation.tuning import (
    TUNABLE_OPTIONS,
    TUNER_NAMES,
    TUNING_CONTEXTS,
    resolve_tune_config,
)

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "GENERATION_SORT_METHODS",
    "MAX_BATCH_BYTES",
    "ORDERS",
    "TUNABLE_OPTIONS",
    "TUNER_NAMES",
    "TUNING_CONTEXTS",
    "FailedSolvesWarning",
    "add_arguments",
    "cli_generate",
    "generate",
    "resolve_solver_config",
    "resolve_tune_config",
    "run",
]
