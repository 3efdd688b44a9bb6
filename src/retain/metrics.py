"""Continual-learning metrics computed from the accuracy matrix.

``R[i, j]`` is the score on experience ``j``'s test set after training experience ``i``.
Definitions follow Lopez-Paz & Ranzato (2017, BWT/FWT) and Chaudhry et al. (2018, forgetting).
For error metrics (regression MSE/MAE) pass ``higher_is_better=False``: forgetting is then the
rise of the error above its best value.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from retain.errors import RetainError
from retain.stability import min_acc, wc_acc


def _square(matrix) -> np.ndarray:
    R = np.asarray(matrix, dtype=float)
    if R.ndim != 2 or R.shape[0] != R.shape[1] or R.shape[0] == 0:
        raise RetainError(f"the accuracy matrix must be square T x T, got shape {R.shape}")
    return R


def average_accuracy(matrix) -> float:
    """Mean score over all experiences after training the last one."""
    return float(_square(matrix)[-1].mean())


def forgetting(matrix, higher_is_better: bool = True) -> float:
    """Mean over j < T-1 of (best score on j before the end) - (final score on j)."""
    R = _square(matrix)
    T = R.shape[0]
    if T < 2:
        return 0.0
    best = R[:-1, :-1].max(axis=0) if higher_is_better else R[:-1, :-1].min(axis=0)
    drop = best - R[-1, :-1] if higher_is_better else R[-1, :-1] - best
    return float(drop.mean())


def bwt(matrix) -> float:
    """Backward transfer: mean over j < T-1 of R[T-1, j] - R[j, j] (negative = forgetting)."""
    R = _square(matrix)
    T = R.shape[0]
    if T < 2:
        return 0.0
    return float(np.mean([R[-1, j] - R[j, j] for j in range(T - 1)]))


def fwt(matrix, baseline) -> float:
    """Forward transfer: mean over j >= 1 of R[j-1, j] - b_j, where b_j is the score of the
    randomly initialised model on experience j."""
    R = _square(matrix)
    b = np.asarray(baseline, dtype=float)
    T = R.shape[0]
    if b.shape != (T,):
        raise RetainError(f"baseline must have one score per experience ({T}), got {b.shape}")
    if T < 2:
        return 0.0
    return float(np.mean([R[j - 1, j] - b[j] for j in range(1, T)]))


@dataclass
class LearnStats:
    """What one call of :meth:`retain.Learner.learn` did."""

    samples: int
    steps: int
    seconds: float
    last_loss: float


@dataclass
class RunResult:
    """What :meth:`retain.Learner.run` measured."""

    accuracy_matrix: np.ndarray
    baseline: np.ndarray
    train_time: list[float] = field(default_factory=list)
    samples_seen: list[int] = field(default_factory=list)
    metric: str = "accuracy"
    experience_names: list[str] = field(default_factory=list)
    #: per experience: flip rates of its update against the model before it
    flips: list[dict] = field(default_factory=list)
    #: with ``eval_every``: scores every K steps (``nan`` for experiences not yet seen)
    curve: np.ndarray | None = None
    curve_steps: list[int] = field(default_factory=list)
    curve_training: list[int] = field(default_factory=list)
    eval_every: int | None = None

    @property
    def higher_is_better(self) -> bool:
        return self.metric == "accuracy"

    @property
    def average_accuracy(self) -> float:
        return average_accuracy(self.accuracy_matrix)

    @property
    def forgetting(self) -> float:
        return forgetting(self.accuracy_matrix, self.higher_is_better)

    @property
    def bwt(self) -> float:
        return bwt(self.accuracy_matrix)

    @property
    def fwt(self) -> float:
        return fwt(self.accuracy_matrix, self.baseline)

    def _mean_flip(self, key: str) -> float | None:
        """Mean over the updates of a trained model (experiences 1..T-1; the first one is
        compared with the untrained model, so it is left out)."""
        values = [f[key] for f in self.flips[1:] if f.get(key) is not None]
        return float(np.mean(values)) if values else None

    @property
    def negative_flip_rate(self) -> float | None:
        return self._mean_flip("negative_flip_rate")

    @property
    def positive_flip_rate(self) -> float | None:
        return self._mean_flip("positive_flip_rate")

    @property
    def negative_flip_impact(self) -> float | None:
        return self._mean_flip("negative_flip_impact")

    @property
    def min_acc(self) -> float | None:
        """min-ACC (De Lange et al. 2023); needs ``eval_every`` and accuracy."""
        if self.curve is None or not self.higher_is_better:
            return None
        return min_acc(self.curve, self.curve_training)

    @property
    def wc_acc(self) -> float | None:
        """WC-ACC (De Lange et al. 2023); needs ``eval_every`` and accuracy."""
        if self.curve is None or not self.higher_is_better:
            return None
        return wc_acc(self.curve, self.curve_training)

    def summary(self) -> dict[str, float | None]:
        return {
            "average_accuracy": self.average_accuracy,
            "forgetting": self.forgetting,
            "bwt": self.bwt,
            "fwt": self.fwt,
            "train_time_s": float(sum(self.train_time)),
            "samples_seen": int(sum(self.samples_seen)),
            "negative_flip_rate": self.negative_flip_rate,
            "positive_flip_rate": self.positive_flip_rate,
            "negative_flip_impact": self.negative_flip_impact,
            "min_acc": self.min_acc,
            "wc_acc": self.wc_acc,
        }

    def to_dict(self) -> dict:
        return {
            "metric": self.metric,
            "accuracy_matrix": np.asarray(self.accuracy_matrix).tolist(),
            "baseline": np.asarray(self.baseline).tolist(),
            "train_time_per_experience_s": list(self.train_time),
            "samples_per_experience": list(self.samples_seen),
            "experience_names": list(self.experience_names),
            "flips_per_experience": list(self.flips),
            "eval_every": self.eval_every,
            "curve": None if self.curve is None else _nulls(self.curve),
            "curve_steps": list(self.curve_steps),
            "curve_training": list(self.curve_training),
            **self.summary(),
        }

    @classmethod
    def from_dict(cls, data: dict) -> RunResult:
        return cls(np.asarray(data["accuracy_matrix"]), np.asarray(data["baseline"]),
                   list(data.get("train_time_per_experience_s", [])),
                   list(data.get("samples_per_experience", [])),
                   data.get("metric", "accuracy"), list(data.get("experience_names", [])),
                   list(data.get("flips_per_experience", [])),
                   None if data.get("curve") is None else np.array(data["curve"], dtype=float),
                   list(data.get("curve_steps", [])), list(data.get("curve_training", [])),
                   data.get("eval_every"))


def _nulls(curve: np.ndarray) -> list[list[float | None]]:
    """The curve as JSON: ``null`` where an experience was not yet seen (JSON has no NaN)."""
    return [[None if np.isnan(v) else float(v) for v in row] for row in curve]
