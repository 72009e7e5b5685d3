"""Per-channel unit-Gaussian normalisation of ``[B, C, *spatial]`` fields.

One mean and one standard deviation per channel, taken over samples and grid points together.
Per-point statistics (as in the original FNO code) would tie a trained operator to the grid it
was trained on; per-channel ones carry over to any resolution, which zero-shot evaluation needs.

Fit on the training split only: statistics that have seen the validation or test data leak
them into the model.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Union

import numpy as np
import torch

__all__ = ["UnitGaussianNormalizer"]

Data = Union[torch.Tensor, np.ndarray, Iterable[Union[torch.Tensor, np.ndarray]]]


class UnitGaussianNormalizer:
    """``encode(x) = (x − mean_c) / (std_c + eps)`` per channel ``c``; ``decode`` inverts it.

    Args:
        eps: added to every standard deviation, so that a constant channel (a right-hand side
            ``f = 1``, say) encodes to zeros instead of dividing by zero. Default ``1e-6``, in
            the units of the data.

    ``fit`` takes a tensor or array ``[n, C, *spatial]``, or an iterable of such batches (a
    DataLoader yielding input tensors, for instance), and accumulates in float64 with the
    pairwise (Chan) update, so the result does not depend on how the data is batched beyond
    rounding. Non-finite entries are left out of the statistics.

    The statistics are plain tensors of shape ``[C]``: ``state_dict()`` holds them (and ``eps``)
    in a form that ``torch.load(weights_only=True)`` reads back.
    """

    def __init__(self, eps: float = 1e-6) -> None:
        if not eps >= 0:
            raise ValueError(f"eps: expected a number >= 0, got {eps!r}")
        self.eps = float(eps)
        self.mean: torch.Tensor | None = None
        self.std: torch.Tensor | None = None
        #: finite values seen per channel (the smallest over channels)
        self.count: int = 0
        self._count = self._mean = self._m2 = None

    # ------------------------------------------------------------------------------ fitting
    @property
    def fitted(self) -> bool:
        return self.mean is not None

    @property
    def channels(self) -> int:
        self._require_fitted()
        return int(self.mean.numel())

    def reset(self) -> "UnitGaussianNormalizer":
        """Forget all statistics (``fit`` calls this first)."""
        self.mean = self.std = None
        self.count = 0
        self._count = self._mean = self._m2 = None
        return self

    def fit(self, data: Data) -> "UnitGaussianNormalizer":
        """Compute per-channel mean and (population) standard deviation; returns ``self``.

        Args:
            data: ``[n, C, *spatial]`` tensor/array, or an iterable of such batches with the
                same ``C``.
        """
        if isinstance(data, (torch.Tensor, np.ndarray)):
            batches: Iterable = (data,)
        else:
            try:
                batches = iter(data)
            except TypeError:
                raise TypeError(
                    f"data: expected a tensor, an array or an iterable of batches, got "
                    f"{type(data).__name__}"
                ) from None
        self.reset()
        for batch in batches:
            self.partial_fit(batch)
        if self._mean is None:
            raise ValueError("data: no batches to fit on")
        return self

    def partial_fit(self, batch: Union[torch.Tensor, np.ndarray]) -> "UnitGaussianNormalizer":
        """Add one batch ``[n, C, *spatial]`` to the statistics; returns ``self``.

        Raises ValueError when a channel has seen no finite value yet.
        """
        x = torch.as_tensor(batch).detach().to("cpu", torch.float64)
        if x.ndim < 2:
            raise ValueError(f"batch: expected [n, C, *spatial], got shape {tuple(x.shape)}")
        if getattr(self, "_mean", None) is not None and x.shape[1] != self._mean.numel():
            raise ValueError(
                f"batch: has {x.shape[1]} channels, earlier batches had {self._mean.numel()}"
            )
        per_channel = x.transpose(0, 1).reshape(x.shape[1], -1)
        finite = torch.isfinite(per_channel)
        zeros = torch.zeros_like(per_channel)
        n_b = finite.sum(dim=1).to(torch.float64)
        mean_b = torch.where(finite, per_channel, zeros).sum(dim=1) / n_b.clamp_min(1)
        m2_b = torch.where(finite, per_channel - mean_b[:, None], zeros).pow(2).sum(dim=1)
        if getattr(self, "_mean", None) is None:
            self._count, self._mean, self._m2 = n_b, mean_b, m2_b
        else:
            total = self._count + n_b
            delta = mean_b - self._mean
            weight_b = n_b / total.clamp_min(1)
            self._mean = self._mean + delta * weight_b
            self._m2 = self._m2 + m2_b + delta.pow(2) * self._count * weight_b
            self._count = total
        if bool((self._count == 0).any()):
            empty = torch.nonzero(self._count == 0).flatten().tolist()
            raise ValueError(f"data: channels {empty} have no finite values to fit on")
        self.mean = self._mean.to(torch.float32)
        self.std = (self._m2 / self._count).sqrt().to(torch.float32)
        self.count = int(self._count.min().item())
        return self

    # ---------------------------------------------------------------------- encode / decode
    def _require_fitted(self) -> None:
        if self.mean is None:
            raise RuntimeError("UnitGaussianNormalizer: call fit() (or load_state_dict) first")

    def _broadcast(self, x: torch.Tensor, stat: torch.Tensor, name: str) -> torch.Tensor:
        if x.ndim < 2 or x.shape[1] != stat.numel():
            raise ValueError(
                f"{name}: expected [B, {stat.numel()}, *spatial] (channels fitted), got shape "
                f"{tuple(x.shape)}"
            )
        return stat.to(device=x.device, dtype=x.dtype).reshape((1, -1) + (1,) * (x.ndim - 2))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C, *spatial]`` in data units -> normalised, same shape, dtype and device."""
        self._require_fitted()
        mean = self._broadcast(x, self.mean, "x")
        scale = self._broadcast(x, self.std + self.eps, "x")
        return (x - mean) / scale

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`encode`: normalised ``[B, C, *spatial]`` -> data units."""
        self._require_fitted()
        mean = self._broadcast(x, self.mean, "x")
        scale = self._broadcast(x, self.std + self.eps, "x")
        return x * scale + mean

    # ------------------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        self._require_fitted()
        return {"mean": self.mean.clone(), "std": self.std.clone(), "eps": self.eps,
                "count": self.count}

    def load_state_dict(self, state: Mapping[str, Any]) -> "UnitGaussianNormalizer":
        missing = [key for key in ("mean", "std", "eps") if key not in state]
        if missing:
            raise ValueError(f"state: missing keys {missing}")
        mean = torch.as_tensor(state["mean"], dtype=torch.float32).flatten()
        std = torch.as_tensor(state["std"], dtype=torch.float32).flatten()
        if mean.shape != std.shape:
            raise ValueError(f"state: mean has shape {tuple(mean.shape)}, std {tuple(std.shape)}")
        self.reset()
        self.mean, self.std = mean, std
        self.eps = float(state["eps"])
        self.count = int(state.get("count", 0))
        return self

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any]) -> "UnitGaussianNormalizer":
        return cls().load_state_dict(state)

    def __repr__(self) -> str:
        if self.mean is None:
            return f"UnitGaussianNormalizer(eps={self.eps}, unfitted)"
        return f"UnitGaussianNormalizer(channels={self.mean.numel()}, eps={self.eps})"
