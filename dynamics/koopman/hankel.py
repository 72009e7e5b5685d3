"""Hankel (delay-embedded) DMD: EDMD on windows of ``delays`` consecutive states.

A snapshot is the window ``[x_t, ..., x_{t+D-1}]`` (oldest first) and its image the window one
step later, so a scalar signal that is a sum of ``k`` sinusoids becomes linear dynamics of rank
``2k``. Forecasts start from the last ``D`` states of each trajectory.
"""

from __future__ import annotations

from typing import Optional

from pdesuite.dynamics.koopman._checks import check_int
from pdesuite.dynamics.koopman.dictionaries import Dictionary
from pdesuite.dynamics.koopman.edmd import EDMD

__all__ = ["HankelDMD"]


class HankelDMD(EDMD):
    """DMD (or EDMD with ``dictionary``) on delay-embedded snapshots.

    Args:
        delays: window length ``D`` (default 10); every trajectory needs ``D + 1`` snapshots.
        rank: singular directions kept (default None: all; for ``k`` sinusoids, ``2k``).
        ridge, rcond, dictionary: as in :class:`~pdesuite.dynamics.koopman.edmd.EDMD`; the
            dictionary acts on the flattened window ``[D·d]`` (default the identity).

    ``predict(x0, steps)`` takes ``x0`` ``[B, D, *state]``, the last ``D`` states (oldest
    first), and returns ``[B, steps + 1, *state]`` starting with ``x0[:, -1]``;
    :attr:`modes` are ``[r, D, *state]``.
    """

    def __init__(self, delays: int = 10, rank: Optional[int] = None, ridge: float = 0.0,
                 dictionary: Optional[Dictionary] = None, rcond: float = 1e-12) -> None:
        super().__init__(dictionary=dictionary, ridge=ridge, rank=rank, rcond=rcond)
        self.delays = check_int(delays, "delays")
