"""The loop of :meth:`retain.Learner.run`: learn each experience in turn, measured around.

The learner trains; :class:`~retain.run_recorder.RunRecorder` scores the test sets after each
experience (and every ``eval_every`` steps through :meth:`retain.Learner.every_steps`); this
loop only joins them, so that neither the step nor the recorder knows about the other.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from retain.errors import RetainError
from retain.metrics import RunResult
from retain.run_recorder import EVAL_SAMPLES, REGRESSION_FLIP_TOLERANCE, RunRecorder
from retain.scenarios.experience import Experience, Stream

if TYPE_CHECKING:
    from retain.strategies.contract import DriverView


def run(learner: DriverView, stream: Stream | Sequence[Experience], epochs: int = 1,
        batch_size: int = 32, progress: Any = None, eval_every: int | None = None,
        flip_tolerance: float = REGRESSION_FLIP_TOLERANCE,
        eval_samples: int | None = EVAL_SAMPLES, loggers: Sequence[Any] = ()) -> RunResult:
    """Train ``learner`` on each experience in turn and test on every experience after each
    one (:meth:`retain.Learner.run`).

    ``progress`` is an optional callable ``progress(i, n, stats)`` called after each
    experience (the CLI passes a progress bar). After each experience the result also holds
    the update's flip rates against the model before it, on the test sets seen so far
    (``flip_tolerance``: how much a regression row's squared error may grow before it counts
    as a negative flip). ``eval_every=K`` also scores the test sets seen so far every ``K``
    steps, for the stability-gap curve, min-ACC and WC-ACC, on a fixed random subset of
    ``eval_samples`` test samples per experience (``None``: all of them). ``loggers``
    (:mod:`retain.loggers`) get each experience's scores and flips once it is learned, and
    the summary at the end; the caller closes them.
    """
    experiences = list(stream)
    if not experiences:
        raise RetainError("the stream has no experiences")
    if getattr(stream, "task_classes", None):
        learner.set_task_classes(stream.task_classes)
    recorder = RunRecorder(learner, experiences, eval_every, flip_tolerance, eval_samples,
                           loggers)
    times, samples = [], []
    for i, experience in enumerate(experiences):
        with recorder.training(i):
            stats = learner.learn(experience, epochs=epochs, batch_size=batch_size)
        times.append(stats.seconds)
        samples.append(stats.samples)
        recorder.finished(i, stats.steps)
        if progress is not None:
            progress(i, len(experiences), stats)
    return recorder.result(times, samples, [e.name for e in experiences])
