"""Running blocks in worker processes (``spawn``), reporting progress and failures to the parent.

Ctrl-C is the parent's to handle: workers ignore SIGINT (from their start on), so that an
interrupt prints no traceback per worker; the parent, interrupted, terminates them and releases
its lock, and the blocks they had finished stay on disk for a rerun to resume from.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import queue as queue_module
import signal
import threading
import traceback

import numpy as np

from pdesuite.datasets.generation.blocks import run_block
from pdesuite.datasets.generation.plan import Plan


def run_share(plan: Plan, blocks: list[int], workers: int, bar, mp_context: str) -> None:
    if not blocks:
        return
    if workers == 1 or len(blocks) == 1:
        for block in blocks:
            run_block(plan, block, lambda: bar.update(1))
        return
    shares = [list(map(int, share)) for share in np.array_split(blocks, min(workers, len(blocks)))]
    run_in_processes(plan, shares, bar, mp_context)


def _worker_main(plan: Plan, blocks: list[int], messages) -> None:
    """Entry point of a worker process: solve ``blocks`` in order, reporting to ``messages``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = mp.parent_process()

    def parent_gone() -> bool:
        return parent is not None and not parent.is_alive()

    try:
        for block in blocks:
            if not run_block(plan, block, lambda: messages.put(("sample", 1)), parent_gone):
                return
            messages.put(("block", block))
    except BaseException:  # any error: reported to the parent, which raises
        messages.put(("error", traceback.format_exc()))
    finally:
        messages.put(("exit", os.getpid()))


def run_in_processes(plan: Plan, assignments: list[list[int]], bar, mp_context: str) -> None:
    context = mp.get_context(mp_context)
    messages = context.Queue()
    processes = [context.Process(target=_worker_main, args=(plan, blocks, messages), daemon=True,
                                 name=f"pdesuite-generate-{rank}")
                 for rank, blocks in enumerate(assignments)]
    try:
        with _sigint_ignored():
            for process in processes:
                process.start()
        exited = 0
        while exited < len(processes):
            try:
                kind, payload = messages.get(timeout=1.0)
            except queue_module.Empty:
                dead = [p for p in processes if not p.is_alive() and p.exitcode not in (0, None)]
                if dead:
                    raise RuntimeError(
                        f"generation worker {dead[0].name} died with exit code "
                        f"{dead[0].exitcode}; finished blocks are kept, rerun to resume"
                    )
                continue
            if kind == "sample":
                bar.update(payload)
            elif kind == "error":
                raise RuntimeError("a generation worker failed (finished blocks are kept; rerun "
                                   f"to resume):\n{payload}")
            elif kind == "exit":
                exited += 1
        for process in processes:
            process.join()
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
        for process in processes:
            if process.pid is not None:
                process.join(timeout=10)
                if not process.is_alive():  # a terminated worker leaves its unfinished shard
                    for temporary in plan.parts.glob(f"*.{process.pid}.tmp"):
                        temporary.unlink(missing_ok=True)
        messages.close()


@contextlib.contextmanager
def _sigint_ignored():
    """Ignore SIGINT in this process while workers start, so that they start ignoring it too.

    A process started while SIGINT is ignored keeps it ignored (Python installs its
    KeyboardInterrupt handler only where SIGINT has its default action), which covers the
    worker's start-up before :func:`_worker_main` runs.
    """
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or previous is None:
        yield  # off the main thread, or a handler not set from Python: leave it alone
        return
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
