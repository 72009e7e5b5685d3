"""Fixtures shared by the test layers."""

from __future__ import annotations

import pytest


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
