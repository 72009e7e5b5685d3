"""A deep Koopman autoencoder ("Information Shapes Koopman Representation", 2025).

An encoder maps a state to latent coordinates ``z``, a decoder maps them back, and one step of
the dynamics is a linear map ``K`` of the latent space, refitted by ridge least squares on every
batch: ``K = (Z_xᵀZ_x/b + ridge·I)⁻¹ Z_xᵀZ_y/b``. The loss of a batch of pairs ``(x, y)`` is

    prediction ``‖dec(z_x K) − y‖²`` + 0.1·reconstruction ``‖dec(z_x) − x‖²``
    + InfoNCE over time neighbours (``z_x`` and ``z_y`` of one pair are the positive pair, the
      other ``z_y`` of the batch the negatives; cosine similarity over a temperature)
    − entropy: the von Neumann entropy ``−tr(ρ log ρ)`` of the normalised latent covariance
      ``ρ = C / tr C``, subtracted, so that training *raises* it (the paper's sign: diverse
      modes, no collapse; the authors' code adds it instead),

with the weights of :class:`DeepKoopmanLoss`. After training, ``K`` is refitted on all the
training pairs in float64, and the estimator's spectrum, residuals (in the latent space) and
forecasts (latent steps, decoded) follow :class:`~pdesuite.dynamics.koopman.base.KoopmanEstimator`.

States are standardised for training (per-coordinate mean, one overall standard deviation);
forecasts come back in the original units. torch runs on CPU unless ``device`` says otherwise
(``device=None`` picks CUDA when available); seeded: the same seed gives the same weights and
loss history on the same device.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from pdesuite.dynamics.koopman._checks import check_float, check_int
from pdesuite.dynamics.koopman.base import KoopmanEstimator

__all__ = ["DeepKoopman", "DeepKoopmanLoss", "KoopmanAutoencoder", "deep_koopman_loss",
           "ridge_koopman", "von_neumann_entropy"]


@dataclass(frozen=True)
class DeepKoopmanLoss:
    """Weights of the loss terms and the InfoNCE temperature.

    Attributes:
        prediction: weight of the one-step prediction MSE (default 1).
        reconstruction: weight of the reconstruction MSE (default 0.1).
        infonce: weight of the InfoNCE term over time neighbours (default 0.1).
        entropy: weight of the von Neumann entropy, subtracted from the loss (default 0.01).
        temperature: InfoNCE temperature (default 0.1).
    """

    prediction: float = 1.0
    reconstruction: float = 0.1
    infonce: float = 0.1
    entropy: float = 0.01
    temperature: float = 0.1

    def __post_init__(self) -> None:
        for name in ("prediction", "reconstruction", "infonce", "entropy"):
            check_float(getattr(self, name), name)
        check_float(self.temperature, "temperature", allow_minimum=False)


def _mlp(sizes: Sequence[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(fan_in, fan_out))
        if i < len(sizes) - 2:
            layers.append(nn.GELU())
    return nn.Sequential(*layers)


class KoopmanAutoencoder(nn.Module):
    """MLP encoder ``[B, d] -> [B, k]`` and decoder ``[B, k] -> [B, d]`` (GELU between layers)."""

    def __init__(self, state_dim: int, latent_dim: int, hidden: Sequence[int] = (128, 128)):
        super().__init__()
        self.encoder = _mlp([state_dim, *hidden, latent_dim])
        self.decoder = _mlp([latent_dim, *reversed(hidden), state_dim])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encoder(x)  # [B, k]
        x_hat = self.decoder(z)  # [B, d]
        return z, x_hat


def ridge_koopman(z_x: torch.Tensor, z_y: torch.Tensor, ridge: float) -> torch.Tensor:
    """``K`` ``[k, k]`` minimising ``‖z_x K − z_y‖²/b + ridge‖K‖²`` for ``z_x, z_y`` ``[b, k]``."""
    b, k = z_x.shape
    gram = z_x.T @ z_x / b + ridge * torch.eye(k, dtype=z_x.dtype, device=z_x.device)  # [k, k]
    return torch.linalg.solve(gram, z_x.T @ z_y / b)  # [k, k]


def von_neumann_entropy(z: torch.Tensor) -> torch.Tensor:
    """``−tr(ρ log ρ)`` of ``ρ = C / tr C``, ``C`` the covariance of ``z`` ``[b, k]``; in
    ``[0, log k]``, largest when the latent directions carry equal variance."""
    centred = z - z.mean(dim=0, keepdim=True)  # [b, k]
    covariance = centred.T @ centred / len(z)  # [k, k]
    density = covariance / torch.trace(covariance).clamp_min(1e-12)  # [k, k], trace 1
    weights = torch.linalg.eigvalsh(density).clamp_min(1e-12)  # [k]
    return -(weights * torch.log(weights)).sum()


def deep_koopman_loss(model: KoopmanAutoencoder, x: torch.Tensor, y: torch.Tensor, ridge: float,
                      weights: DeepKoopmanLoss) -> tuple[torch.Tensor, dict[str, float]]:
    """The training loss of a batch of pairs ``x, y`` ``[b, d]``, and its terms as floats."""
    z_x, x_hat = model(x)  # [b, k], [b, d]
    z_y = model.encoder(y)  # [b, k]
    K = ridge_koopman(z_x, z_y, ridge)  # [k, k]
    prediction = F.mse_loss(model.decoder(z_x @ K), y)
    reconstruction = F.mse_loss(x_hat, x)
    similarity = F.normalize(z_x, dim=1) @ F.normalize(z_y, dim=1).T  # [b, b]
    infonce = F.cross_entropy(similarity / weights.temperature,
                              torch.arange(len(x), device=x.device))
    entropy = von_neumann_entropy(z_x)
    total = (weights.prediction * prediction + weights.reconstruction * reconstruction
             + weights.infonce * infonce - weights.entropy * entropy)
    terms = {"prediction": prediction.item(), "reconstruction": reconstruction.item(),
             "infonce": infonce.item(), "entropy": entropy.item()}
    return total, terms


class DeepKoopman(KoopmanEstimator):
    """A deep Koopman autoencoder, trained with Adam on snapshot pairs.

    Args:
        latent_dim: ``k``, the size of the latent space (default 16).
        hidden: widths of the encoder's hidden layers (the decoder's in reverse), default
            (128, 128).
        ridge: ridge parameter of the per-batch and the final fit of ``K`` (default 1e-3, > 0).
        loss: :class:`DeepKoopmanLoss`, the weights of the loss terms.
        epochs: passes over the training pairs (default 200).
        batch_size: pairs per step (default 256).
        learning_rate: Adam's (default 1e-3).
        seed: seeds the initial weights and the batch order (default 0).
        device: torch device; None (default) takes CUDA when available, else the CPU.
        dtype: ``torch.float32`` (default) or ``torch.float64``.

    Attributes after ``fit``: ``model_`` (the :class:`KoopmanAutoencoder`, in eval mode),
    ``loss_history_`` (mean loss per epoch), ``loss_terms_`` (the last epoch's mean terms) and
    the properties of :class:`~pdesuite.dynamics.koopman.base.KoopmanEstimator` (modes by
    least squares: the decoder is nonlinear).
    """

    def __init__(self, latent_dim: int = 16, hidden: Sequence[int] = (128, 128),
                 ridge: float = 1e-3, loss: Optional[DeepKoopmanLoss] = None, epochs: int = 200,
                 batch_size: int = 256, learning_rate: float = 1e-3, seed: int = 0,
                 device: Optional[str] = None, dtype: torch.dtype = torch.float32) -> None:
        self.latent_dim = check_int(latent_dim, "latent_dim")
        self.hidden = tuple(check_int(width, "hidden") for width in hidden)
        self.ridge = check_float(ridge, "ridge", allow_minimum=False)
        if loss is not None and not isinstance(loss, DeepKoopmanLoss):
            raise TypeError(f"loss: expected a DeepKoopmanLoss, got {type(loss).__name__}")
        self.loss = loss if loss is not None else DeepKoopmanLoss()
        self.epochs = check_int(epochs, "epochs")
        self.batch_size = check_int(batch_size, "batch_size")
        self.learning_rate = check_float(learning_rate, "learning_rate", allow_minimum=False)
        self.seed = check_int(seed, "seed", minimum=0)
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(f"dtype: must be torch.float32 or torch.float64, got {dtype}")
        self.dtype = dtype

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(array, dtype=self.dtype, device=self.device)

    def _fit_pairs(self, X: np.ndarray, Y: np.ndarray, weights: np.ndarray) -> None:
        self.mean_ = X.mean(axis=0)
        self.scale_ = float(X.std()) or 1.0
        x_all = self._tensor((X - self.mean_) / self.scale_)
        y_all = self._tensor((Y - self.mean_) / self.scale_)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            model = KoopmanAutoencoder(X.shape[1], self.latent_dim, self.hidden)
        model = model.to(device=self.device, dtype=self.dtype)
        optimiser = torch.optim.Adam(model.parameters(), lr=self.learning_rate)
        order = torch.Generator().manual_seed(self.seed)
        history, terms = [], {}
        batch = min(self.batch_size, len(X))
        for _ in range(self.epochs):
            permutation = torch.randperm(len(X), generator=order).to(self.device)
            totals, sums = [], {}
            # a last batch of fewer than 2 pairs has no negatives and no covariance: dropped
            for start in range(0, len(X) - 1, batch):
                chosen = permutation[start:start + batch]
                if len(chosen) < 2:
                    continue
                loss, parts = deep_koopman_loss(model, x_all[chosen], y_all[chosen],
                                                self.ridge, self.loss)
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                totals.append(loss.item())
                for name, value in parts.items():
                    sums[name] = sums.get(name, 0.0) + value
            if not totals:
                raise ValueError("data: the deep Koopman model needs at least 2 snapshot pairs")
            history.append(float(np.mean(totals)))
            terms = {name: value / len(totals) for name, value in sums.items()}
        model.eval()
        self.model_ = model
        self.loss_history_ = np.array(history)
        self.loss_terms_ = terms
        self._Z_X = self._lift(X)
        self._Z_Y = self._lift(Y)
        root = np.sqrt(weights)[:, None]
        gram = (root * self._Z_X).T @ (root * self._Z_X) / weights.sum()
        cross = (root * self._Z_X).T @ (root * self._Z_Y) / weights.sum()
        self._K = np.linalg.solve(gram + self.ridge * np.eye(self.latent_dim), cross)

    def _lift(self, states: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            z = self.model_.encoder(self._tensor((states - self.mean_) / self.scale_))
        return z.cpu().to(torch.float64).numpy()

    def _decode(self, Z: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            x = self.model_.decoder(self._tensor(Z))
        return x.cpu().to(torch.float64).numpy() * self.scale_ + self.mean_
