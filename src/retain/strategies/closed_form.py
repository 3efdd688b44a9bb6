"""What the closed-form heads (NCM, SLDA, RanPAC) share: statistics accumulated over features.

A closed-form head learns nothing by gradient: after each experience it passes the
experience once through the model's feature extractor (:func:`head_features`, batched, under
``torch.inference_mode``) and adds the features to sums it keeps (class sums, counts, Gram
matrices, in float64). Sums do not depend on the order they were added in, so learning
experiences one after another gives the head that learning them all at once gives, with no
stored sample. Prediction (``classify``) solves the head from the sums, once per change.

The learner's own gradient steps still run and train whatever the model leaves trainable (a
linear layer on cached features costs next to nothing; see :mod:`retain.backbone`); the
predictions are the head's. Keep the feature extractor frozen after the first experience
(first-session adaptation, :func:`retain.backbone.freeze`): features that drift make the
sums mix incomparable features.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from retain.errors import RetainError
from retain.strategies.base import Strategy

if TYPE_CHECKING:
    from retain.scenarios import Experience
    from retain.strategies.contract import LearnerView


def head_features(model: nn.Module) -> nn.Module:
    """The feature extractor a head reads: ``model.features`` when there is one, an
    ``nn.Sequential`` without its last layer, or the identity for a single linear layer (a
    model that is only a head, over features cached by :func:`retain.backbone.cache_stream`)."""
    extractor = getattr(model, "features", None)
    if isinstance(extractor, nn.Module):
        return extractor
    if isinstance(model, nn.Sequential) and len(model) > 1:
        return model[:-1]
    if isinstance(model, nn.Linear) or (isinstance(model, nn.Sequential) and len(model) == 1):
        return nn.Identity()
    raise RetainError(
        f"a closed-form head needs features: give the model ({type(model).__name__}) a "
        "`features` sub-module, make it an nn.Sequential whose last layer is the classifier, "
        "or train a linear layer on cached features (retain.backbone.cache_stream)")


def grown(t: torch.Tensor | None, n: int, shape: tuple[int, ...], device, dim: int = 0
          ) -> torch.Tensor:
    """``t`` (float64) with at least ``n`` entries along ``dim``, new ones zero."""
    if t is None:
        size = list(shape)
        size.insert(dim, n)
        return torch.zeros(size, dtype=torch.float64, device=device)
    if t.shape[dim] >= n:
        return t
    pad = list(t.shape)
    pad[dim] = n - t.shape[dim]
    return torch.cat((t, t.new_zeros(pad)), dim=dim)


class ClosedFormHead(Strategy):
    """Base class: subclasses define :meth:`accumulate` (add features) and :meth:`scores`
    (class scores of features, from the sums), and declare a ``counts`` state (samples per
    class) that :meth:`count` fills; :meth:`add_class_sums` also fills a ``sums`` state."""

    def __init__(self) -> None:
        super().__init__()
        self._solved: object = None  # whatever scores() derives from the sums, until they change

    def accumulate(self, features: torch.Tensor, labels: torch.Tensor) -> None:
        """Add a batch of ``[n, d]`` features and their class labels to the sums."""
        raise NotImplementedError

    def scores(self, features: torch.Tensor) -> torch.Tensor:
        """``[n, classes]`` scores (higher is likelier); ``-inf`` for a class never seen."""
        raise NotImplementedError

    def predict(self, features: torch.Tensor) -> torch.Tensor:
        """The class of each row of ``features``."""
        return self.scores(features).argmax(1)

    def fit(self, features: torch.Tensor, labels: torch.Tensor) -> ClosedFormHead:
        """Accumulate features without a learner (e.g. cached ones); returns the head."""
        if features.dim() != 2 or features.shape[0] != labels.shape[0]:
            raise RetainError(f"features must be [n, d] with n labels; got "
                              f"{tuple(features.shape)} and {tuple(labels.shape)}")
        if labels.is_floating_point() or (labels.numel() and int(labels.min()) < 0):
            raise RetainError("class labels must be integers >= 0")
        self.accumulate(features.detach().to(torch.float64), labels.long())
        self._solved = None
        return self

    def after_experience(self, learner: LearnerView, experience: Experience) -> None:
        if learner.task_type != "classification":
            raise RetainError(f"{type(self).__name__} is a classifier head; the learner is a "
                              f"{learner.task_type} learner")
        extractor = head_features(learner.model)
        was_training = learner.model.training
        learner.model.eval()
        try:
            with torch.inference_mode():
                for x, y, _ in learner.batches(experience.train, learner.eval_batch_size):
                    self.fit(extractor(x).flatten(1), y)
        finally:
            learner.model.train(was_training)

    def classify(self, learner: LearnerView, x: torch.Tensor) -> torch.Tensor | None:
        if self._empty():
            return None  # nothing learned yet: the model's own outputs
        extractor = head_features(learner.model)
        was_training = learner.model.training
        learner.model.eval()
        try:
            with torch.inference_mode():
                return torch.cat([
                    self.predict(extractor(x[i:i + learner.eval_batch_size]).flatten(1)
                                 .to(torch.float64))
                    for i in range(0, x.shape[0], learner.eval_batch_size)])
        finally:
            learner.model.train(was_training)

    def count(self, labels: torch.Tensor, device) -> int:
        """Add ``labels`` to ``counts`` (grown to the largest class seen); returns how many
        classes the sums now cover."""
        n = int(labels.max()) + 1 if labels.numel() else 0
        self.counts = grown(self.counts, n, (), device)
        self.counts.index_add_(0, labels, torch.ones_like(labels, dtype=torch.float64))
        return self.counts.shape[0]

    def add_class_sums(self, features: torch.Tensor, labels: torch.Tensor) -> None:
        """Add ``features`` to ``counts`` and to their class's row of ``sums``."""
        n = self.count(labels, features.device)
        self.sums = grown(self.sums, n, (features.shape[1],), features.device)
        self.sums.index_add_(0, labels, features)

    def class_means(self) -> torch.Tensor:
        """``sums / counts`` (zero for a class never seen)."""
        return self.sums / self.counts.clamp(min=1).unsqueeze(1)

    def _empty(self) -> bool:
        return getattr(self, "counts", None) is None

    def bind(self, learner: LearnerView) -> None:
        super().bind(learner)
        self._solved = None

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self._solved = None

    @staticmethod
    def unseen(counts: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        """``scores`` with the classes of zero count at ``-inf``."""
        return scores.masked_fill(counts[: scores.shape[1]] == 0, float("-inf"))
