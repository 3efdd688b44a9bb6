"""Nearest class mean on frozen features (SimpleCIL / the prototype head of APER)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from retain.strategies.closed_form import ClosedFormHead


class NCM(ClosedFormHead):
    """Classify by the nearest class mean of the features; the state is each class's feature
    sum and count, so every class is remembered exactly with no stored sample.

    Args:
        normalize: L2-normalise each feature before it is summed and before it is compared
            (cosine prototypes, as SimpleCIL and APER use on a pretrained ViT).

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
    >>> head = nn.Linear(6, 4)  # a head over features computed once (retain.backbone)
    >>> s = NCM()
    >>> learner = Learner(head, torch.optim.SGD(head.parameters(), lr=0.0), strategies=[s])
    >>> for classes in ([0, 1], [2, 3]):
    ...     _ = learner.learn(task(classes), batch_size=20)
    >>> s.counts.tolist()
    [20.0, 20.0, 20.0, 20.0]
    >>> round(learner.evaluate(task([0, 1, 2, 3])), 2)
    0.99
    """

    name = "ncm"

    def __init__(self, normalize: bool = False):
        super().__init__()
        self.normalize = bool(normalize)
        self.add_state("sums", None)  # [classes, d] float64
        self.add_state("counts", None)  # [classes] float64

    def accumulate(self, features: torch.Tensor, labels: torch.Tensor) -> None:
        if self.normalize:
            features = F.normalize(features, dim=1)
        self.add_class_sums(features, labels)

    def scores(self, features: torch.Tensor) -> torch.Tensor:
        if self._solved is None:
            self._solved = self.class_means()
        means = self._solved
        features = features.to(means)
        if self.normalize:
            features = F.normalize(features, dim=1)
        return self.unseen(self.counts, -torch.cdist(features, means))
