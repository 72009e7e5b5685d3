"""Where training runs: the device, the DDP process group, collectives, and Ctrl-C deferral.

Under ``torchrun`` (``WORLD_SIZE`` > 1 in the environment) :func:`init_process_group` starts
the process group (NCCL on CUDA, gloo on the CPU) unless it already is, and registers
:func:`destroy_process_group` to run at exit. Each process trains on ``cuda:LOCAL_RANK`` (or the
CPU). Outside ``torchrun`` everything here is a no-op for one process.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import threading
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable, Iterator, Sequence, Union

import torch

__all__ = [
    "CleanInterrupt",
    "Processes",
    "deferred_sigint",
    "destroy_process_group",
    "init_process_group",
    "select_device",
]


def select_device(device: Union[str, torch.device, None] = "auto") -> torch.device:
    """The device to train on.

    Args:
        device: ``"auto"`` (or ``None``): CUDA when available, else the CPU. Otherwise anything
            ``torch.device`` accepts (``"cpu"``, ``"cuda"``, ``"cuda:1"``).

    Raises ValueError for a CUDA device on a machine without CUDA or without that index.
    """
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        chosen = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device: not a torch device: {device!r} ({exc})") from None
    if chosen.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device: {device!r} requested, but CUDA is not available here")
        if chosen.index is not None and chosen.index >= torch.cuda.device_count():
            raise ValueError(
                f"device: {device!r} requested, but only {torch.cuda.device_count()} CUDA "
                f"devices exist"
            )
    return chosen


@dataclass(frozen=True)
class Processes:
    """This process's place among the training processes, and the collectives between them.

    Attributes: ``world_size`` (1 outside ``torchrun``), ``rank``, ``local_rank``, ``device``
    (where tensors for collectives live: the training device on CUDA, else the CPU).
    """

    world_size: int
    rank: int
    local_rank: int
    device: torch.device

    @classmethod
    def from_environment(cls, requested_device: Any = "auto") -> "Processes":
        """Read ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK``; pick the device (``cuda:LOCAL_RANK``
        under DDP on CUDA, set as the current one); start the process group when
        ``WORLD_SIZE`` > 1."""
        world_size = int(os.environ.get("WORLD_SIZE", "1") or 1)
        rank = int(os.environ.get("RANK", "0") or 0) if world_size > 1 else 0
        local_rank = int(os.environ.get("LOCAL_RANK", "0") or 0) if world_size > 1 else 0
        device = select_device(requested_device)
        if world_size > 1 and device.type == "cuda":
            device = torch.device("cuda", local_rank)
            torch.cuda.set_device(device)
        processes = cls(world_size, rank, local_rank, device)
        if world_size > 1:
            init_process_group(device, world_size)
        return processes

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def any(self, flag: bool) -> bool:
        """True on every rank when ``flag`` is true on any rank."""
        if self.world_size == 1:
            return bool(flag)
        import torch.distributed as dist

        value = torch.tensor([1.0 if flag else 0.0], device=self._comm_device())
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item() > 0)

    def sum(self, values: Sequence[float]) -> list[float]:
        """Element-wise sums of ``values`` over the ranks (float64)."""
        if self.world_size == 1:
            return list(values)
        import torch.distributed as dist

        tensor = torch.tensor(list(values), dtype=torch.float64, device=self._comm_device())
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor.tolist()

    def gather(self, obj: Any) -> list[Any]:
        """``obj`` of every rank, in rank order (every rank must call it)."""
        if self.world_size == 1:
            return [obj]
        import torch.distributed as dist

        gathered: list[Any] = [None] * self.world_size
        dist.all_gather_object(gathered, obj)
        return gathered

    def _comm_device(self) -> torch.device:
        return self.device if self.device.type == "cuda" else torch.device("cpu")


def init_process_group(device: torch.device, world_size: int) -> None:
    """Start the default process group (NCCL on CUDA, gloo otherwise) unless it is running;
    check that it has ``world_size`` ranks."""
    import torch.distributed as dist

    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        atexit.register(destroy_process_group)
    if dist.get_world_size() != world_size:
        raise RuntimeError(f"WORLD_SIZE={world_size}, but the process group has "
                           f"{dist.get_world_size()} ranks")


def destroy_process_group() -> None:
    """Wait for every rank (at most 120 s on gloo), then tear the process group down.

    Without the wait a rank that finishes first destroys its side of the group while another
    still runs (rank 0 writes the logs and the figure), and gloo aborts that rank at exit. The
    bound keeps a rank that crashed from hanging the others.
    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return
    # A failed wait means a peer is gone: tear down what is left all the same.
    with contextlib.suppress(Exception):
        if dist.get_backend() == "gloo":
            dist.monitored_barrier(timeout=timedelta(seconds=120))
        else:
            dist.barrier()
    dist.destroy_process_group()


class CleanInterrupt(KeyboardInterrupt):
    """Raised at a batch boundary after a deferred Ctrl-C: the training state is consistent."""


@contextlib.contextmanager
def deferred_sigint(on_request: Callable[[], None]) -> Iterator[None]:
    """Turn the first Ctrl-C into a call of ``on_request`` (which records that a stop was
    asked for); a second Ctrl-C raises KeyboardInterrupt at once. The previous handler comes
    back on exit. Outside the main thread, signals cannot be handled: nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)

    def request_stop(signum, frame):
        signal.signal(signal.SIGINT, signal.default_int_handler)
        on_request()

    try:
        signal.signal(signal.SIGINT, request_stop)
    except ValueError:  # not the main interpreter
        yield
        return
    try:
        yield
    finally:
        signal.signal(
            signal.SIGINT, previous if previous is not None else signal.default_int_handler
        )
