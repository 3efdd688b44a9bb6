"""Streaming linear discriminant analysis (Hayes & Kanan, CVPR-W 2020)."""

from __future__ import annotations

import torch

from retain.errors import RetainError
from retain.strategies.closed_form import ClosedFormHead


class SLDA(ClosedFormHead):
    """Class means and one covariance shared by all classes; scores
    ``f·Λμ_c − ½ μ_c·Λμ_c`` with ``Λ = ((1 − ε)Σ + εI)⁻¹``.

    The paper updates ``Σ`` sample by sample; here the pooled within-class covariance it
    tracks is computed exactly from accumulated sums (class sums, counts and ``Σ f fᵀ``), so
    the head does not depend on the order the samples came in. Memory: ``d × d + classes × d``
    numbers, whatever the number of samples.

    Args:
        shrinkage: ``ε``, the weight of the identity in the covariance (the paper's 1e-4).

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
    >>> s = SLDA()
    >>> learner = Learner(head, torch.optim.SGD(head.parameters(), lr=0.0), strategies=[s])
    >>> for classes in ([0, 1], [2, 3]):
    ...     _ = learner.learn(task(classes), batch_size=20)
    >>> tuple(s.gram.shape), round(learner.evaluate(task([0, 1, 2, 3])), 2)
    ((6, 6), 0.99)
    """

    name = "slda"

    def __init__(self, shrinkage: float = 1e-4):
        if not 0.0 <= shrinkage <= 1.0:
            raise RetainError(f"SLDA shrinkage must be in [0, 1], got {shrinkage!r}")
        super().__init__()
        self.shrinkage = float(shrinkage)
        self.add_state("sums", None)  # [classes, d] float64
        self.add_state("counts", None)  # [classes]
        self.add_state("gram", None)  # [d, d]: sum of f fᵀ

    def accumulate(self, features: torch.Tensor, labels: torch.Tensor) -> None:
        self.add_class_sums(features, labels)
        if self.gram is None:
            self.gram = features.new_zeros(features.shape[1], features.shape[1])
        self.gram.addmm_(features.T, features)

    def covariance(self) -> torch.Tensor:
        """The pooled within-class covariance ``Σ`` of every feature accumulated."""
        seen = self.counts > 0
        sums, counts = self.sums[seen], self.counts[seen]
        scatter = self.gram - (sums.T / counts) @ sums
        return scatter / counts.sum()

    def scores(self, features: torch.Tensor) -> torch.Tensor:
        if self._solved is None:
            d = self.gram.shape[0]
            eye = torch.eye(d, dtype=torch.float64, device=self.gram.device)
            precision = (1 - self.shrinkage) * self.covariance() + self.shrinkage * eye
            means = self.class_means()
            weights = torch.linalg.solve(precision, means.T).T  # Λμ_c (Λ symmetric)
            self._solved = (weights, -0.5 * (weights * means).sum(1))
        weights, bias = self._solved
        return self.unseen(self.counts, features.to(weights) @ weights.T + bias)
