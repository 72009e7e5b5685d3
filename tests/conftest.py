"""Fixtures shared by the test layers."""

from __future__ import annotations

import signal

import pytest

# A test run started in the background (`make test &`, nohup, some CI runners) inherits SIGINT
# ignored, and so would every process it starts. The Ctrl-C tests need Python's own handler:
# set it here, where the child processes then get the default disposition back on exec.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="module")
def one_torch_thread():
    """Run a module's torch work on one intra-op thread, then restore the setting.

    The tests use tiny tensors: on a shared 2-core machine a second thread only adds
    synchronisation, and with other processes running it made these tests many times slower.
    torch is imported here, not at the top, so that modules without torch never load it.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
