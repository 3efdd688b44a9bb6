"""What :meth:`retain.Learner.run` measures around training, kept out of the training loop.

After each experience: the score on every test set (a row of the accuracy matrix) and the
flip rates of the update against the model before it, on the test sets seen so far. With
``eval_every=K``: the scores on the test sets seen so far every ``K`` steps, for the
stability-gap curve. Every evaluation is one batched pass (see
:class:`retain.evaluation.StreamEvaluator`); the training step itself is untouched.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

import numpy as np
import torch

from retain.errors import RetainError
from retain.evaluation import StreamEvaluator
from retain.flips import flip_rates
from retain.metrics import RunResult
from retain.scenarios.experience import Experience

if TYPE_CHECKING:
    from retain.learner import Learner

#: how much a regression row's squared error may grow before it counts as a negative flip
REGRESSION_FLIP_TOLERANCE = 0.02


class RunRecorder:
    """Scores, flips and (optionally) the per-step curve of one run over a stream."""

    def __init__(self, learner: Learner, experiences: Sequence[Experience],
                 eval_every: int | None = None,
                 flip_tolerance: float = REGRESSION_FLIP_TOLERANCE):
        if eval_every is not None and (not isinstance(eval_every, int) or eval_every < 1):
            raise RetainError(f"eval_every must be a positive number of steps, got "
                              f"{eval_every!r}")
        self.learner, self.eval_every, self.tolerance = learner, eval_every, flip_tolerance
        self.evaluator = StreamEvaluator(learner, [e.test for e in experiences],
                                         [e.task_label for e in experiences])
        self.ends = torch.cumsum(self.evaluator.counts.long(), 0).tolist()
        self.previous = self.evaluator.scores()
        self.baseline = self.evaluator.aggregate(self.previous)
        self.rows: list[np.ndarray] = []
        self.flips: list[dict] = []
        self.curve: list[np.ndarray] = []
        self.curve_steps: list[int] = []
        self.curve_training: list[int] = []
        self.steps_before = 0

    @contextmanager
    def training(self, i: int) -> Iterator[None]:
        """While experience ``i`` trains, evaluate its and the earlier test sets every
        ``eval_every`` steps (the learner calls back; nothing happens on other steps)."""
        if self.eval_every is None:
            yield
            return
        self.learner._periodic = (self.eval_every, lambda steps: self._point(i, steps))
        try:
            yield
        finally:
            self.learner._periodic = None

    def _point(self, i: int, steps: int) -> None:
        scores = self.evaluator.scores(upto=self.ends[i])
        self._add_point(i, self.steps_before + steps, self.evaluator.aggregate(scores))

    def _add_point(self, i: int, step: int, row: np.ndarray) -> None:
        seen = row.copy()
        seen[i + 1:] = np.nan  # only the experiences seen so far are on the curve
        self.curve.append(seen)
        self.curve_steps.append(step)
        self.curve_training.append(i)

    def finished(self, i: int, steps: int) -> None:
        """Experience ``i`` is learned (in ``steps`` steps): its row and its flips."""
        scores = self.evaluator.scores()
        row = self.evaluator.aggregate(scores)
        self.rows.append(row)
        end = self.ends[i]
        self.flips.append(flip_rates(self.previous[:end], scores[:end],
                                     self.tolerance).to_dict())
        self.previous = scores
        self.steps_before += steps
        if self.eval_every is not None:
            self._add_point(i, self.steps_before, row)

    def result(self, times: list[float], samples: list[int],
               names: list[str]) -> RunResult:
        curve = np.array(self.curve) if self.eval_every is not None else None
        return RunResult(np.array(self.rows), self.baseline, times, samples,
                         metric=self.evaluator.metric, experience_names=names,
                         flips=self.flips, curve=curve, curve_steps=self.curve_steps,
                         curve_training=self.curve_training, eval_every=self.eval_every)
