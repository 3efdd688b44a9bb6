"""iCaRL: incremental classifier and representation learning (Rebuffi et al., CVPR 2017)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from retain.errors import RetainError
from retain.strategies.base import Batch, Strategy
from retain.strategies.common import Teacher

if TYPE_CHECKING:
    from retain.scenarios import Experience
    from retain.strategies.contract import LearnerView


LOSSES = ("ce", "bce")


def feature_extractor(model: nn.Module) -> nn.Module:
    """The representation iCaRL classifies with: ``model.features`` when the model has such a
    module, else an ``nn.Sequential`` model without its last layer."""
    features = getattr(model, "features", None)
    if isinstance(features, nn.Module):
        return features
    if isinstance(model, nn.Sequential) and len(model) > 1:
        return model[:-1]
    raise RetainError("iCaRL needs a model with a `features` sub-module, or an nn.Sequential "
                      f"whose last layer is the classifier; got {type(model).__name__}")


def herding(features: torch.Tensor, m: int) -> torch.Tensor:
    """Indices of ``m`` exemplars chosen greedily so that the mean of the first ``k`` chosen is
    as close as possible to the mean of all ``features``, for every ``k`` (iCaRL Alg. 4).

    Vectorised over candidates: one ``[n, d]`` distance computation per chosen exemplar.
    """
    n = features.shape[0]
    target = features.mean(0)
    running = torch.zeros_like(target)
    available = torch.ones(n, dtype=torch.bool, device=features.device)
    chosen = []
    for k in range(1, min(m, n) + 1):
        distance = (target - (running + features) / k).norm(dim=1)
        i = distance.masked_fill(~available, float("inf")).argmin()
        chosen.append(i)
        available[i] = False
        running += features[i]
    if not chosen:
        return torch.zeros(0, dtype=torch.long, device=features.device)
    return torch.stack(chosen)


class ICaRL(Strategy):
    """Herding-selected exemplars, distillation, and a nearest-mean-of-exemplars classifier.

    After each experience: a frozen copy of the model becomes the teacher; every class in
    memory keeps ``capacity // classes seen`` exemplars, chosen by :func:`herding` on the
    L2-normalised features (new classes) or truncated in herding order (old classes); the mean
    normalised feature of each class's exemplars is stored.

    Training steps replay ``batch_size`` exemplars alongside the incoming rows. With
    ``loss="ce"`` (default) both get the learner's cross-entropy, plus ``alpha ·`` sigmoid-BCE
    distillation of the teacher's old-class outputs. ``loss="bce"`` is the paper's loss
    instead (and mammoth's): one sigmoid binary cross-entropy over every class seen so far,
    whose targets are the one-hot label on the classes that are not old and the teacher's
    sigmoid outputs on the old ones (``alpha`` is unused; needs a classification learner).
    ``batch_size=0`` follows the paper's training set instead (new data ∪ exemplars, each
    exemplar seen about once per epoch): every step appends exemplars at the rate
    ``memory size / experience size`` per incoming row, walking a shuffled order.

    Prediction: :meth:`classify` assigns the class whose exemplar mean is nearest to the
    normalised feature; with ``nme=True`` ``Learner.predict``, ``evaluate`` and ``run`` (so
    also ``retain run`` and ``retain bench``) use it instead of the model's last layer. The
    feature extractor is :func:`feature_extractor`.

    Args:
        capacity: total number of exemplars.
        alpha: weight of the distillation term.
        batch_size: exemplars replayed per step (default: the incoming batch size; 0: mixed
            in at the rate of the paper's training set).
        nme: classify with the nearest mean of exemplars.
        loss: ``"ce"`` (cross-entropy + distillation) or ``"bce"`` (the paper's sigmoid loss).
        normalize: L2-normalise features for herding and the class means (the paper); ``False``
            uses raw features and plain means (mammoth).
        mean_batch: 0 (default) computes each class mean exactly. ``k > 0`` reproduces
            mammoth's code instead: the class's exemplars, in herding order, are averaged in
            batches of ``k`` and the batch means folded as ``m ← (m + batch mean) / 2``, so
            later (less representative) exemplars weigh more once a class has more than two
            batches. For reproducing published numbers only.
        replay_cast_uint8: replay the exemplars the way mammoth's 2020-21 iCaRL merged them
            into MNIST's ``uint8`` training tensor: the ``[0, 1]`` pixel values cast to
            ``uint8`` without scaling, so a replayed exemplar is ``⌊x⌋ / 255`` (a black image
            with its label). Herding, the class means and the stored memory keep the true
            exemplars. For reproducing published numbers only.
        seed: seed of the replay sampling.

    Example (one experience of random data; ``s`` is the strategy):

    >>> import torch
    >>> from torch import nn
    >>> from torch.utils.data import TensorDataset
    >>> from retain import Learner
    >>> _ = torch.manual_seed(0)
    >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    >>> s = ICaRL(capacity=20)
    >>> learner = Learner(model, torch.optim.SGD(model.parameters(), lr=0.1), strategies=[s])
    >>> data = TensorDataset(torch.randn(32, 4), torch.randint(0, 3, (32,)))
    >>> _ = learner.learn(data, batch_size=8)
    >>> learner.predict(data.tensors[0][:5]).shape
    torch.Size([5])
    """

    name = "icarl"
    # exemplars chosen by herding on the whole experience every rank holds: identical
    distributed = True

    def __init__(self, capacity: int = 500, alpha: float = 1.0, batch_size: int | None = None,
                 nme: bool = True, loss: str = "ce", normalize: bool = True, mean_batch: int = 0,
                 replay_cast_uint8: bool = False, seed: int = 0):
        if not isinstance(capacity, int) or capacity < 1:
            raise RetainError(f"iCaRL capacity must be a positive integer, got {capacity!r}")
        if loss not in LOSSES:
            raise RetainError(f"unknown iCaRL loss {loss!r}; choose one of {LOSSES}")
        if not isinstance(mean_batch, int) or mean_batch < 0:
            raise RetainError(f"iCaRL mean_batch must be an integer >= 0, got {mean_batch!r}")
        super().__init__()
        self.mean_batch = mean_batch
        self.replay_cast_uint8 = bool(replay_cast_uint8)
        self.loss = loss
        self.normalize = bool(normalize)
        self.capacity = capacity
        self.alpha = float(alpha)
        self.batch_size = batch_size
        self.nme = bool(nme)
        # learned state (saved, restored, moved to the learner's device); the teacher is saved
        # as weights and rebuilt on the learner's model when bound
        self.add_state("memory", {})  # exemplars: x, y (and task)
        self.add_state("rng", np.random.default_rng(seed))
        self.add_state("old_units", None)  # output units of the classes before the experience
        self.add_state("class_means", None)
        self.add_state("mean_labels", None)
        self.add_state("teacher", Teacher())
        self._replay: dict[str, torch.Tensor] = {}  # the rows training appends (= memory)
        self._rate = 0.0  # exemplars per incoming row when mixing them in (batch_size=0)
        self._credit = 0.0
        self._order = np.zeros(0, dtype=np.int64)

    # -- training --------------------------------------------------------------------------
    def overrides(self, hook: str) -> bool:
        # one loss or the other, chosen once: no per-step branch
        if hook == "criterion":
            return self.loss == "bce"
        if hook == "loss_terms" and self.loss == "bce":
            return False
        return super().overrides(hook)

    def bind(self, learner: LearnerView) -> None:
        if self.loss == "bce" and learner.task_type != "classification":
            raise RetainError("iCaRL's loss='bce' needs a classification learner")
        self._bind_state(learner)

    def before_experience(self, learner: LearnerView, experience: Experience) -> None:
        if self.memory:  # the memory changed since the last pass: start a new one
            self._rate = self.memory["y"].shape[0] / max(len(experience.train), 1)
            self._credit, self._order = 0.0, np.zeros(0, dtype=np.int64)

    def extend_batch(self, learner: LearnerView, batch: Batch) -> None:
        if not self.memory:
            return
        idx = torch.from_numpy(self._draw(learner, batch))
        if len(idx) == 0:
            return
        idx = idx.to(learner.device)
        batch.append(*(self._replay[k].index_select(0, idx) if k in self._replay else None
                       for k in ("x", "y", "task")))

    def _draw(self, learner: LearnerView, batch: Batch) -> np.ndarray:
        """Exemplar rows to replay; with several ranks, this rank's share of one draw for the
        whole step (every rank's memory and generator stay identical)."""
        world = learner.world
        if self.batch_size == 0:
            if world.size == 1:
                return self._mixed(batch.n_new)
            return np.array_split(self._mixed(sum(world.counts)), world.size)[world.rank]
        k = self.batch_size or batch.n_new
        share = None if world.size == 1 else world.share(k, self.batch_size is not None)
        offset, total = (0, k) if share is None else share
        return self.rng.integers(0, self.memory["y"].shape[0], total)[offset : offset + k]

    def _mixed(self, n_new: int) -> np.ndarray:
        """The next exemplars of a shuffled pass, as many as ``n_new`` rows of the experience
        earn at the mixing rate (host arithmetic only)."""
        self._credit += n_new * self._rate
        k = int(self._credit)
        self._credit -= k
        while len(self._order) < k:
            self._order = np.concatenate((self._order,
                                          self.rng.permutation(self.memory["y"].shape[0])))
        chosen, self._order = self._order[:k], self._order[k:]
        return chosen

    def criterion(self, learner: LearnerView, batch: Batch, out: torch.Tensor,
                  y: torch.Tensor) -> torch.Tensor:
        """The paper's loss (``loss="bce"``): sigmoid BCE over the classes seen so far, old
        classes' targets from the teacher."""
        target = F.one_hot(y, out.shape[1]).to(out.dtype)
        if self.teacher.ready:
            # the labelled rows' inputs: the first rows, unless a strategy appended labelled
            # rows after unlabelled ones (then ``batch.labelled`` indexes them)
            x = (batch.x[: out.shape[0]] if batch.labelled is None
                 else batch.x.index_select(0, batch.labelled))
            with torch.no_grad():
                old = torch.sigmoid(self.teacher(x))
            target.index_copy_(1, self.old_units, old.index_select(1, self.old_units))
        # mean over the seen classes' units, as a mask (no host sync on their number)
        seen = learner.seen_classes.to(out.dtype)
        terms = F.binary_cross_entropy_with_logits(out, target, reduction="none")
        return (terms * seen).sum() / (seen.sum() * out.shape[0])

    def loss_terms(self, learner: LearnerView, batch: Batch, loss: torch.Tensor) -> torch.Tensor:
        if not self.teacher.ready:
            return loss
        with torch.no_grad():
            target = torch.sigmoid(self.teacher(batch.x).index_select(1, self.old_units))
        student = batch.out.index_select(1, self.old_units)
        return loss + self.alpha * F.binary_cross_entropy_with_logits(student, target)

    # -- consolidation ---------------------------------------------------------------------
    def after_experience(self, learner: LearnerView, experience: Experience) -> None:
        x, y, task = next(learner.batches(experience.train, batch_size=len(experience.train)))
        new = {"x": x, "y": y} if task is None else {"x": x, "y": y, "task": task}
        old_classes = [] if not self.memory else self.memory["y"].unique().tolist()
        new_classes = y.unique().tolist()
        per_class = self.capacity // len(set(old_classes) | set(new_classes))
        parts = []
        for c in old_classes:
            if c not in new_classes:
                rows = (self.memory["y"] == c).nonzero().squeeze(1)[:per_class]
                parts.append({k: v.index_select(0, rows) for k, v in self.memory.items()})
        for c in new_classes:
            rows = (y == c).nonzero().squeeze(1)
            chosen = rows[herding(self.features(learner, x.index_select(0, rows)), per_class)]
            parts.append({k: v.index_select(0, chosen) for k, v in new.items()})
        self.memory = {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
        self.teacher.snapshot(learner.model)
        self.old_units = torch.nonzero(learner.seen_classes).squeeze(1)
        self.update_means(learner)
        self._refresh_replay()

    def _refresh_replay(self) -> None:
        """The rows training replays: the memory, or its uint8-cast images
        (``replay_cast_uint8``), computed once per memory, not per step."""
        self._replay = dict(self.memory)
        if self.replay_cast_uint8 and self.memory:
            x = self.memory["x"]
            self._replay["x"] = x.clamp(0, 255).trunc() / 255

    def features(self, learner: LearnerView, x: torch.Tensor) -> torch.Tensor:
        """Features of ``x``, L2-normalised unless ``normalize=False`` (evaluation mode, no
        gradients)."""
        extractor = feature_extractor(learner.model)
        was_training = learner.model.training
        learner.model.eval()
        try:
            with torch.no_grad():  # not inference_mode: means and herding reuse these
                size = learner.eval_batch_size
                parts = [extractor(x[i : i + size]).flatten(1) for i in range(0, len(x), size)]
        finally:
            learner.model.train(was_training)
        feats = torch.cat(parts)
        return F.normalize(feats, dim=1) if self.normalize else feats

    def update_means(self, learner: LearnerView) -> None:
        """Recompute each class's mean exemplar feature with the current model (normalised
        unless ``normalize=False``)."""
        feats = self.features(learner, self.memory["x"])
        labels, inverse = self.memory["y"].unique(return_inverse=True)
        if self.mean_batch:
            means = torch.stack([self._halving_mean(feats[inverse == i])
                                 for i in range(len(labels))])
        else:
            sums = torch.zeros(len(labels), feats.shape[1], device=feats.device)
            sums.index_add_(0, inverse, feats)
            counts = torch.bincount(inverse, minlength=len(labels)).unsqueeze(1)
            means = sums / counts
        self.class_means = F.normalize(means, dim=1) if self.normalize else means
        self.mean_labels = labels

    def _halving_mean(self, feats: torch.Tensor) -> torch.Tensor:
        """Mammoth's class mean: batch means of ``mean_batch`` rows folded pairwise."""
        mean = None
        for part in feats.split(self.mean_batch):
            mean = part.mean(0) if mean is None else (mean + part.mean(0)) / 2
        return mean

    # -- prediction ------------------------------------------------------------------------
    def classify(self, learner: LearnerView, x: torch.Tensor) -> torch.Tensor | None:
        """Nearest-mean-of-exemplars class of each input (``None``, i.e. the model's own
        prediction, when ``nme=False`` or before the first experience has exemplars)."""
        if not self.nme or self.class_means is None:
            return None
        feats = self.features(learner, x.to(learner.device))
        return self.mean_labels[torch.cdist(feats, self.class_means).argmin(1)]

    # -- state -----------------------------------------------------------------------------
    def _bind_state(self, learner: LearnerView) -> None:
        super().bind(learner)  # the declared state, the teacher rebuilt on the model
        self._refresh_replay()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self._refresh_replay()
