"""RanPAC: random projection and a ridge head in closed form (McDonnell et al., NeurIPS 2023)."""

from __future__ import annotations

import numpy as np
import torch

from retain.errors import RetainError
from retain.strategies.closed_form import ClosedFormHead, grown

#: the paper's grid of ridge values
RIDGES = tuple(10.0 ** k for k in range(-8, 9))


class RanPAC(ClosedFormHead):
    """Features ``f`` go through a fixed random projection and a ReLU, ``h = relu(f W)`` with
    ``W`` of shape ``d × projection`` drawn from ``N(0, 1)``; the head is the ridge regression
    of the one-hot labels on ``h``, solved from the accumulated Gram matrix ``G = Σ h hᵀ`` and
    class prototypes ``C = Σ h yᵀ``: ``(G + λI)⁻¹ C``.

    ``ridge=None`` chooses ``λ`` from :data:`RIDGES` on a validation split: each sample joins
    the validation sums with probability ``val_fraction``; the validation error of each
    ``λ`` fitted on the other samples is computed from sums alone
    (``Σ‖y‖² − 2 tr(Bᵀ C_val) + tr(Bᵀ G_val B)``), then the head is solved on every sample.
    The split is drawn in arrival order, so only a given ``ridge`` makes the head
    independent of the order experiences arrive in. Memory: two or four
    ``projection × projection`` float64 matrices (32 MB each at the default 2000).

    Args:
        projection: ``M``, the dimension of the random projection (the paper uses 10000).
        ridge: ``λ``, or ``None`` to choose it on a validation split.
        val_fraction: the share of samples held out to choose ``λ``.
        seed: seed of the projection and of the validation split.

    Example (two experiences with disjoint classes; ``s`` is the strategy):

    >>> import torch
    >>> from torch import nn
    >>> from torch.utils.data import TensorDataset
    >>> from retain import Learner
    >>> _ = torch.manual_seed(0)
    >>> centres = torch.randn(4, 6) * 3
    >>> def task(classes):
    ...     y = torch.tensor(classes).repeat(20)
    ...     return TensorDataset(centres[y] + torch.randn(len(y), 6), y)
    >>> head = nn.Linear(6, 4)
    >>> s = RanPAC(projection=200)
    >>> learner = Learner(head, torch.optim.SGD(head.parameters(), lr=0.0), strategies=[s])
    >>> for classes in ([0, 1], [2, 3]):
    ...     _ = learner.learn(task(classes), batch_size=20)
    >>> accuracy = learner.evaluate(task([0, 1, 2, 3]))
    >>> tuple(s.gram.shape), s.chosen_ridge in RIDGES, accuracy > 0.9
    ((200, 200), True, True)
    """

    name = "ranpac"

    def __init__(self, projection: int = 2000, ridge: float | None = None,
                 val_fraction: float = 0.2, seed: int = 0):
        if not isinstance(projection, int) or projection < 1:
            raise RetainError(f"RanPAC projection must be a positive integer, got {projection!r}")
        if ridge is not None and not ridge > 0:
            raise RetainError(f"RanPAC ridge must be > 0 (or None to choose it), got {ridge!r}")
        if not 0.0 < val_fraction < 1.0:
            raise RetainError(f"RanPAC val_fraction must be in (0, 1), got {val_fraction!r}")
        super().__init__()
        self.projection, self.ridge = projection, ridge
        self.val_fraction, self.seed = float(val_fraction), seed
        self.add_state("dim", None)  # the features' dimension d: W is drawn from it and seed
        self.add_state("counts", None)  # [classes] samples seen per class
        self.add_state("gram", None)  # [M, M] sum of h hᵀ over every sample
        self.add_state("prototypes", None)  # [M, classes] sum of h yᵀ
        self.add_state("gram_val", None)  # the same sums over the validation split (ridge None)
        self.add_state("prototypes_val", None)
        self.add_state("n_val", 0)
        self.add_state("rng", np.random.default_rng(seed))
        self._weights: torch.Tensor | None = None  # W, rebuilt from dim and seed
        self.chosen_ridge: float | None = ridge

    def project(self, features: torch.Tensor) -> torch.Tensor:
        """``h = relu(f W)`` in float64."""
        d = features.shape[1]
        if self.dim is None:
            self.dim = d
        if d != self.dim:
            raise RetainError(f"RanPAC was fitted on {self.dim}-dimensional features, got {d}")
        if self._weights is None or self._weights.device != features.device:
            g = torch.Generator().manual_seed(self.seed)
            w = torch.randn(d, self.projection, generator=g, dtype=torch.float64)
            self._weights = w.to(features.device)
        return torch.relu(features.to(torch.float64) @ self._weights)

    def accumulate(self, features: torch.Tensor, labels: torch.Tensor) -> None:
        h = self.project(features)
        m, device = self.projection, h.device
        n = self.count(labels, device)
        self.gram = grown(self.gram, m, (m,), device)
        self.prototypes = grown(self.prototypes, n, (m,), device, dim=1)
        onehot = torch.zeros(len(labels), n, dtype=torch.float64, device=device)
        onehot[torch.arange(len(labels), device=device), labels] = 1.0
        self.gram.addmm_(h.T, h)
        self.prototypes.addmm_(h.T, onehot)
        if self.ridge is None:
            held = torch.from_numpy(self.rng.random(len(labels)) < self.val_fraction)
            hv, yv = h[held.to(device)], onehot[held.to(device)]
            self.gram_val = grown(self.gram_val, m, (m,), device)
            self.prototypes_val = grown(self.prototypes_val, n, (m,), device, dim=1)
            self.gram_val.addmm_(hv.T, hv)
            self.prototypes_val.addmm_(hv.T, yv)
            self.n_val = int(self.n_val) + int(held.sum())

    def validation_errors(self) -> list[float]:
        """Squared error on the validation split of the head fitted on the other samples, for
        each ridge of :data:`RIDGES` (needs ``ridge=None``)."""
        if self.gram_val is None:
            raise RetainError("RanPAC keeps validation sums only with ridge=None")
        n = self.prototypes.shape[1]
        g_fit = self.gram - self.gram_val
        c_fit = self.prototypes - self.prototypes_val
        c_val = self.prototypes_val[:, :n]
        e, q = torch.linalg.eigh(g_fit)
        qc = q.T @ c_fit
        errors = []
        for ridge in RIDGES:
            b = q @ (qc / (e.clamp(min=0) + ridge).unsqueeze(1))
            errors.append(float(self.n_val - 2 * (b * c_val).sum()
                                + (b * (self.gram_val @ b)).sum()))
        return errors

    def scores(self, features: torch.Tensor) -> torch.Tensor:
        if self._solved is None:
            ridge = self.ridge
            if ridge is None:  # no validation sample yet: the middle of the grid
                ridge = (RIDGES[int(np.argmin(self.validation_errors()))] if self.n_val
                         else 1.0)
            self.chosen_ridge = ridge
            eye = torch.eye(self.projection, dtype=torch.float64, device=self.gram.device)
            self._solved = torch.linalg.solve(self.gram + ridge * eye, self.prototypes)
        return self.unseen(self.counts, self.project(features) @ self._solved)

    def bind(self, learner) -> None:
        super().bind(learner)
        self._weights = None
