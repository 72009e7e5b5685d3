"""The shared skeleton of the Koopman estimators: fit, spectrum, certificates and forecasts.

Every estimator lifts a state ``x`` (flattened, ``[D]``) to coordinates ``z(x)`` ``[r]`` (a
dictionary, its leading principal directions, a kernel's, or an encoder's) in which one step of
the dynamics is the matrix ``K`` ``[r, r]`` acting on rows: ``z(x_{t+1}) ≈ z(x_t) K``. So an
observable ``g = z c`` is mapped by the Koopman operator to ``z (K c)``, the convention of
EDMD (``K = Ψ_X⁺ Ψ_Y``). With ``K W = W Λ``, the eigenfunctions are ``φ_j(x) = z(x) w_j``
and ``z(x_t) = Σ_j φ_j(x_0) λ_j^t (W⁻¹)_j``; a decoder maps ``z`` back to the state.

Subclasses implement ``_fit_pairs(X, Y, weights)`` (setting ``_K``, ``_Z_X``, ``_Z_Y`` and,
for a linear decoder, ``_decoder``) and ``_lift(states)``; a nonlinear decoder overrides
``_decode``.
"""

from __future__ import annotations

import warnings
from typing import Any, Optional, Union

import numpy as np

from pdesuite.dynamics.koopman import certificates
from pdesuite.dynamics.koopman._checks import check_float, check_int
from pdesuite.dynamics.koopman.snapshots import SnapshotPairs, snapshot_pairs

__all__ = ["KoopmanEstimator"]


class KoopmanEstimator:
    """Base class of the Koopman estimators (see the module docstring for the conventions)."""

    #: Window length of the delay embedding the estimator works on (1: none).
    delays: int = 1

    # ------------------------------------------------------------------ fitting
    def fit(self, data: Any, weights: Optional[np.ndarray] = None,
            ragged: bool = False) -> "KoopmanEstimator":
        """Fit on trajectories or on snapshot pairs; returns self.

        Args:
            data: trajectories ``[n_traj, n_time, *state]`` or a list of ``[n_time, *state]``
                (see :func:`~pdesuite.dynamics.koopman.snapshots.as_trajectories`), or a
                :class:`~pdesuite.dynamics.koopman.snapshots.SnapshotPairs`.
            weights: quadrature weights ``[m]`` of the snapshot pairs, in the order of
                :func:`~pdesuite.dynamics.koopman.snapshots.snapshot_pairs` (default uniform).
            ragged: allow trajectories of different lengths.
        """
        if isinstance(data, SnapshotPairs):
            if data.delays != self.delays:
                raise ValueError(f"data: pairs embedded with delays={data.delays}, the estimator "
                                 f"uses delays={self.delays}")
            pairs = data
        else:
            pairs = snapshot_pairs(data, delays=self.delays, ragged=ragged)
        self.weights_ = certificates.quadrature_weights(weights, pairs.n_pairs)
        self.state_shape_ = tuple(pairs.state_shape)
        self._spectrum: Optional[tuple[np.ndarray, np.ndarray]] = None
        self._residuals: Optional[np.ndarray] = None
        self._decoder: Optional[np.ndarray] = None
        self._training_states = pairs.X
        self._fit_pairs(pairs.X, pairs.Y, self.weights_)
        return self

    def _fit_pairs(self, X: np.ndarray, Y: np.ndarray,
                   weights: np.ndarray) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _lift(self, states: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _decode(self, Z: np.ndarray) -> np.ndarray:
        """Flattened (embedded) states ``[B, D]`` from coordinates ``[B, r]``."""
        return Z @ self._decoder

    def _check_fitted(self) -> None:
        if not hasattr(self, "_K"):
            raise RuntimeError(f"{type(self).__name__}: call fit(...) first")

    # ------------------------------------------------------------------ results
    @property
    def koopman_matrix(self) -> np.ndarray:
        """``K`` ``[r, r]``: ``z(x_{t+1}) ≈ z(x_t) K`` in the estimator's coordinates."""
        self._check_fitted()
        return self._K

    def _eigendecomposition(self) -> tuple[np.ndarray, np.ndarray]:
        return np.linalg.eig(self._K)

    def _ensure_spectrum(self) -> tuple[np.ndarray, np.ndarray]:
        self._check_fitted()
        if self._spectrum is None:
            values, vectors = self._eigendecomposition()
            order = np.lexsort((-values.imag, -np.abs(values)))  # largest |λ| first
            values, vectors = values[order], vectors[:, order].astype(np.complex128)
            # unit norm of each eigenfunction in L²(ω): ‖√W Z_X w‖ = 1
            norms = np.linalg.norm(np.sqrt(self.weights_)[:, None] * (self._Z_X @ vectors),
                                   axis=0)
            vectors = vectors / np.where(norms > 0, norms, 1.0)[None, :]
            self._spectrum = (values, vectors)
        return self._spectrum

    @property
    def eigenvalues(self) -> np.ndarray:
        """Complex ``[r]``, largest modulus first."""
        return self._ensure_spectrum()[0]

    @property
    def eigenvectors(self) -> np.ndarray:
        """``W`` ``[r, r]``: column ``j`` holds the coefficients of ``φ_j`` in the coordinates."""
        return self._ensure_spectrum()[1]

    @property
    def eigenfunctions(self) -> np.ndarray:
        """``φ_j(x_k)`` on the training snapshots ``X``, complex ``[m, r]`` (unit L²(ω) norm);
        :meth:`evaluate_eigenfunctions` evaluates them anywhere."""
        return self._Z_X @ self.eigenvectors

    def evaluate_eigenfunctions(self, states: Any) -> np.ndarray:
        """``φ_j(x)`` for states ``[B, *state]`` (``[B, delays, *state]`` with delays > 1),
        complex ``[B, r]``."""
        return self._lift(self._flat_states(states)) @ self.eigenvectors

    @property
    def modes(self) -> np.ndarray:
        """Koopman modes, complex ``[r, *state]`` (``[r, delays, *state]`` with delays > 1):
        ``x ≈ Σ_j φ_j(x) m_j``, i.e. ``W⁻¹ B`` for a linear decoder ``B``, else the weighted
        least-squares fit of the training states on the eigenfunctions."""
        vectors = self.eigenvectors
        if self._decoder is not None:
            flat = np.linalg.solve(vectors, self._decoder)
        else:
            root = np.sqrt(self.weights_)[:, None]
            flat = np.linalg.lstsq(root * (self._Z_X @ vectors),
                                   root * self._training_states, rcond=None)[0]
        return flat.reshape(len(flat), *self._embedded_shape())

    @property
    def residuals(self) -> np.ndarray:
        """ResDMD residual of each eigenpair, ``[r]`` in the order of :attr:`eigenvalues`."""
        if self._residuals is None:
            values, vectors = self._ensure_spectrum()
            self._residuals = certificates.residuals(self._Z_X, self._Z_Y, values, vectors,
                                                     self.weights_)
        return self._residuals

    def certified(self, epsilon: float) -> np.ndarray:
        """Bool ``[r]``: the eigenpairs whose residual is at most ``epsilon``."""
        epsilon = check_float(epsilon, "epsilon")
        return self.residuals <= epsilon

    def pseudospectrum(self, grid: np.ndarray) -> np.ndarray:
        """``τ(z)`` on ``grid`` from the training pairs; see
        :func:`~pdesuite.dynamics.koopman.certificates.pseudospectrum`."""
        self._check_fitted()
        return certificates.pseudospectrum(self._Z_X, self._Z_Y, grid, self.weights_)

    def verified_spectrum(self, grid: np.ndarray, measure_preserving: bool = False,
                          factor: float = 5.0) -> certificates.VerifiedSpectrum:
        """The verified spectrum on ``grid``; see
        :func:`~pdesuite.dynamics.koopman.certificates.verified_spectrum`."""
        self._check_fitted()
        return certificates.verified_spectrum(self._Z_X, self._Z_Y, grid, self.weights_,
                                              measure_preserving=measure_preserving,
                                              factor=factor)

    # ------------------------------------------------------------------ saving
    def save(self, path: Any, overwrite: bool = False) -> Any:
        """Write the estimator to the directory ``path`` (JSON + ``.npz``, no pickle); read it
        back with :func:`~pdesuite.dynamics.koopman.persistence.load_estimator`. Returns the
        directory as a ``Path``; see :func:`~pdesuite.dynamics.koopman.persistence.save_estimator`.
        """
        from pdesuite.dynamics.koopman.persistence import save_estimator

        return save_estimator(self, path, overwrite=overwrite)

    # ------------------------------------------------------------------ forecasts
    def _embedded_shape(self) -> tuple[int, ...]:
        return self.state_shape_ if self.delays == 1 else (self.delays, *self.state_shape_)

    def _flat_states(self, x0: Any) -> np.ndarray:
        """``x0`` ``[B, *embedded]`` checked and flattened to ``[B, D]``."""
        self._check_fitted()
        array = np.asarray(x0)
        if array.dtype.kind not in "biuf":
            raise TypeError(f"x0: expected real numbers, got dtype {array.dtype}")
        shape = self._embedded_shape()
        if array.shape[1:] != shape:
            what = "[B, delays, *state]" if self.delays > 1 else "[B, *state]"
            raise ValueError(f"x0: expected {what} = [B, {', '.join(map(str, shape))}], got "
                             f"shape {array.shape}")
        if not np.all(np.isfinite(array)):
            raise ValueError("x0: contains NaN or inf")
        return np.asarray(array, dtype=np.float64).reshape(len(array), -1)

    def predict(self, x0: Any, steps: int,
                certified: Union[float, None] = None) -> np.ndarray:
        """Forecast ``steps`` steps from a batch of initial states.

        Args:
            x0: ``[B, *state]``; with ``delays = D > 1``, the last ``D`` states of each
                trajectory, oldest first, ``[B, D, *state]``.
            steps: number of steps ahead, >= 0.
            certified: None (default: the whole fitted ``K``), or ``ε``: only the eigenpairs
                whose residual is at most ``ε`` (:meth:`certified`) carry the forecast, so that
                a spurious (uncertified) mode cannot make it blow up.

        Returns:
            float64 ``[B, steps + 1, *state]`` in the original state space. Index 0 is the
            current state itself (``x0``, or ``x0[:, -1]`` with delays); index ``t`` is the
            forecast ``t`` steps later.
        """
        steps = check_int(steps, "steps", minimum=0)
        states = self._flat_states(x0)
        Z = self._lift(states)  # [B, r]
        if certified is None:
            lifted = [Z]
            for _ in range(steps):
                lifted.append(lifted[-1] @ self._K)
        else:
            keep = self.certified(certified)
            if not keep.any():
                warnings.warn(f"certified: no eigenpair has a residual <= {certified}; the "
                              "forecast is the decoding of zero", UserWarning, stacklevel=2)
            values, vectors = self._ensure_spectrum()
            coefficients = (Z @ vectors)[:, keep]  # φ_j(x0), [B, s]
            back = np.linalg.solve(vectors, np.eye(len(vectors)))[keep]  # rows of W⁻¹, [s, r]
            lifted = [np.real((coefficients * values[keep] ** t) @ back)
                      for t in range(steps + 1)]
        decoded = self._decode(np.concatenate(lifted[1:], axis=0)) if steps else None
        size = int(np.prod(self.state_shape_, dtype=np.int64))
        current = states[:, -size:]
        out = np.empty((len(states), steps + 1, size))
        out[:, 0] = current
        if steps:
            out[:, 1:] = np.real(decoded)[:, -size:].reshape(steps, len(states), size) \
                .transpose(1, 0, 2)
        return out.reshape(len(states), steps + 1, *self.state_shape_)
