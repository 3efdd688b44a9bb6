"""Scoring a learner on test sets: accuracy (classification) or MSE (regression) per set.

Uses only the learner's written contract (:class:`retain.strategies.contract.DriverView`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from retain.errors import RetainError

if TYPE_CHECKING:
    from retain.strategies.contract import DriverView


def evaluate(learner: DriverView, dataset: Dataset, task: int | None = None) -> float:
    """Accuracy (classification) or MSE (regression) on a dataset
    (:meth:`retain.Learner.evaluate`)."""
    return float(StreamEvaluator(learner, [dataset], [task])()[0])


class StreamEvaluator:
    """Scores every test set in one batched pass over their concatenation.

    ``samples_per_set`` keeps a fixed random subset (seeded by the set's position) of at most
    that many samples of each set: cheaper, for evaluations every few steps.
    """

    def __init__(self, learner: DriverView, datasets: Sequence[Dataset],
                 tasks: Sequence[int | None] | None = None,
                 samples_per_set: int | None = None):
        if samples_per_set is not None and samples_per_set < 1:
            raise RetainError(f"samples_per_set must be >= 1, got {samples_per_set}")
        self.learner = learner
        self.metric = "accuracy" if learner.task_type == "classification" else "mse"
        xs, ys, ts, segs = [], [], [], []
        tasks = tasks or [None] * len(datasets)
        for i, (dataset, task) in enumerate(zip(datasets, tasks, strict=True)):
            if dataset is None:
                raise RetainError(f"experience {i} has no test set")
            tensors = _subset(learner.experience_tensors(dataset, task), samples_per_set, i)
            xs.append(tensors[0])
            ys.append(tensors[1])
            ts.append(tensors[2] if len(tensors) > 2 else None)
            segs.append(torch.full((tensors[0].shape[0],), i, dtype=torch.long))
        self.x, self.y = torch.cat(xs), torch.cat(ys)
        self.t = None if any(t is None for t in ts) else torch.cat(ts)
        self.segments = torch.cat(segs).to(learner.device)
        self.counts = torch.bincount(self.segments, minlength=len(datasets)).double()

    def __call__(self) -> np.ndarray:
        """The score of each test set."""
        return self.aggregate(self.scores())

    def aggregate(self, scores: torch.Tensor) -> np.ndarray:
        """Per-test-set means of per-sample scores (from :meth:`scores`)."""
        n = scores.shape[0]
        sums = torch.bincount(self.segments[:n], weights=scores.double(),
                              minlength=len(self.counts))
        counts = torch.bincount(self.segments[:n], minlength=len(self.counts)).double()
        return (sums / counts).cpu().numpy()  # NaN for a set beyond ``upto``

    def scores(self, upto: int | None = None) -> torch.Tensor:
        """One score per test sample, in order: correct (bool) or its squared error; only
        the first ``upto`` samples when given (the test sets of the experiences so far)."""
        learner, model = self.learner, self.learner.model
        was_training = model.training
        model.eval()
        scores = []
        size = learner.eval_batch_size
        classify = learner.classifier if self.metric == "accuracy" else None
        try:
            with torch.inference_mode():
                for i in range(0, self.x.shape[0] if upto is None else upto, size):
                    stop = i + size if upto is None else min(i + size, upto)
                    x, y = self.x[i:stop], self.y[i:stop]
                    if self.metric == "accuracy":
                        classes = None if classify is None else classify(learner, x)
                        if classes is None:
                            t = None if self.t is None else self.t[i:stop]
                            classes = learner.mask(model(x), t).argmax(1)
                        scores.append(classes == y)
                    else:
                        out = model(x)
                        err = (out - learner.target(y, out)) ** 2
                        scores.append(err.reshape(err.shape[0], -1).mean(1))
        finally:
            model.train(was_training)
        return torch.cat(scores)


def batched_outputs(model: nn.Module, x: torch.Tensor, task: torch.Tensor | None,
                    mask: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor],
                    size: int) -> torch.Tensor:
    """``mask(model(x), task)`` in eval mode, without gradients, ``size`` rows at a time."""
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            parts = [mask(model(x[i : i + size]), None if task is None else task[i : i + size])
                     for i in range(0, x.shape[0], size)]
    finally:
        model.train(was_training)
    return torch.cat(parts)


def _subset(tensors: tuple, limit: int | None, seed: int) -> tuple:
    n = tensors[0].shape[0]
    if limit is None or n <= limit:
        return tensors
    keep = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:limit].sort()[0]
    return tuple(t.index_select(0, keep.to(t.device)) for t in tensors)
