"""What :meth:`retain.Learner.run` measures around training, kept out of the training loop.

After each experience: the score on every test set (a row of the accuracy matrix) and the
flip rates of the update against the model before it, on the test sets seen so far. With
``eval_every=K``: the scores on the test sets seen so far every ``K`` steps, for the
stability-gap curve, on a fixed random subset of ``eval_samples`` samples of each (default
200; ``None`` for all) so that it is cheap enough to leave on; the points at the experience
boundaries use the whole sets. Every evaluation is one batched pass (see
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
from retain.loggers.results import curve_scalars, experience_scalars, log_result
from retain.metrics import RunResult
from retain.scenarios.experience import Experience

if TYPE_CHECKING:
    from retain.strategies.contract import DriverView

#: how much a regression row's squared error may grow before it counts as a negative flip
REGRESSION_FLIP_TOLERANCE = 0.02
#: test samples per experience scored every ``eval_every`` steps (boundaries use them all)
EVAL_SAMPLES = 200


class RunRecorder:
    """Scores, flips and (optionally) the per-step curve of one run over a stream."""

    def __init__(self, learner: DriverView, experiences: Sequence[Experience],
                 eval_every: int | None = None,
                 flip_tolerance: float = REGRESSION_FLIP_TOLERANCE,
                 eval_samples: int | None = EVAL_SAMPLES, loggers: Sequence = ()):
        if eval_every is not None and (not isinstance(eval_every, int) or eval_every < 1):
            raise RetainError(f"eval_every must be a positive number of steps, got "
                              f"{eval_every!r}")
        self.learner, self.eval_every, self.tolerance = learner, eval_every, flip_tolerance
        self.loggers = list(loggers)
        for log in self.loggers:
            if not callable(getattr(log, "log_scalars", None)):
                raise RetainError(f"{log!r} is not a logger (see retain.loggers)")
        self.evaluator = StreamEvaluator(learner, [e.test for e in experiences],
                                         [e.task_label for e in experiences])
        self.ends = torch.cumsum(self.evaluator.counts.long(), 0).tolist()
        self.often = self.evaluator
        if eval_every is not None and eval_samples is not None:
            self.often = StreamEvaluator(learner, [e.test for e in experiences],
                                         [e.task_label for e in experiences], eval_samples)
        self.often_ends = torch.cumsum(self.often.counts.long(), 0).tolist()
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
        with self.learner.every_steps(self.eval_every, lambda steps: self._point(i, steps)):
            yield

    def _point(self, i: int, steps: int) -> None:
        scores = self.often.scores(upto=self.often_ends[i])
        self._add_point(i, self.steps_before + steps, self.often.aggregate(scores))

    def _add_point(self, i: int, step: int, row: np.ndarray) -> None:
        seen = row.copy()
        seen[i + 1:] = np.nan  # only the experiences seen so far are on the curve
        for log in self.loggers:  # buffered: written when the experience ends
            log.log_scalars(curve_scalars(seen, self.evaluator.metric), step)
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
            if self.curve_steps and self.curve_steps[-1] == self.steps_before:
                for column in (self.curve, self.curve_steps, self.curve_training):
                    column.pop()  # the last step was scored on the subset: use the full sets
            self._add_point(i, self.steps_before, row)
        for log in self.loggers:
            log.log_scalars(experience_scalars(i, row, self.flips[-1], self.evaluator.metric),
                            i)
            log.flush()

    def result(self, times: list[float], samples: list[int],
               names: list[str]) -> RunResult:
        curve = np.array(self.curve) if self.eval_every is not None else None
        result = RunResult(np.array(self.rows), self.baseline, times, samples,
                           metric=self.evaluator.metric, experience_names=names,
                           flips=self.flips, curve=curve, curve_steps=self.curve_steps,
                           curve_training=self.curve_training, eval_every=self.eval_every)
        log_result(self.loggers, result)
        return result
