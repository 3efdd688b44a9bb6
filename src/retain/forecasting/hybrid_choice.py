"""How the hybrid chooses its settings: every candidate run test-then-train over the last
``validate_days`` of the pre-training period, never on a forecast day.

First the base alone (each trailing window, set of seasons and ETS cadence), then the
correction on the best base (each loss, learning rate and number of update epochs). The
correction starts switched on only if its best candidate beat the base alone. The functions
take the :class:`~retain.forecasting.hybrid.Hybrid` whose candidates they score
(:class:`Validated` lists what they read of it).

>>> c = Candidate(window=504, seasons=(24, 168), lr=3e-4)
>>> c.describe()["base_seasons"], c.describe()["update_lr"], Candidate(504, (24,)).describe()
([24, 168], 0.0003, {'base_window_steps': 504, 'base_seasons': [24], \
'base_ets_fit_every': 1, 'correction': False})
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np
from torch import nn
from torch.utils.data import TensorDataset

from retain.errors import RetainError
from retain.forecasting.seasonal import SeasonalBase, history_needed


@dataclass(frozen=True)
class Candidate:
    """One setting of the hybrid; ``lr=None`` is the base alone."""

    window: int
    seasons: tuple[int, ...]
    lr: float | None = None
    loss: str = "l1"
    epochs: int = 2  # passes of each update over the new day's windows
    ets_every: int = 1  # refreshes between fits of the base's ETS (1: every day)

    def describe(self) -> dict:
        return {"base_window_steps": self.window, "base_seasons": list(self.seasons),
                "base_ets_fit_every": self.ets_every,
                "correction": self.lr is not None,
                **({"update_lr": self.lr, "loss": self.loss, "update_epochs": self.epochs}
                   if self.lr is not None else {})}


LOSSES = {"l1": nn.L1Loss, "mse": nn.MSELoss}

#: validation results by the (id of the) inputs they were computed on, dropped with those
#: inputs (see :func:`choose`)
_CHOICES: dict[int, dict[tuple, tuple]] = {}


class Validated(Protocol):
    """What the choice reads of a hybrid (:class:`~retain.forecasting.hybrid.Hybrid` has it)."""

    seasons: tuple[int, ...]
    season_sets: list[tuple[int, ...]]
    windows: tuple[int, ...]
    lrs: tuple[float, ...]
    losses: tuple[str, ...]
    epochs: tuple[int, ...]
    ets_every: tuple[int, ...]
    validate_days: int
    horizon: int
    period: int
    lookback: int
    batch_size: int
    pretrain: int
    target: np.ndarray
    inputs: Any
    validation: list[dict]

    def _choice_key(self) -> tuple: ...
    def _base(self, c: Candidate) -> SeasonalBase: ...
    def _origins(self, stop: int) -> range: ...
    def _examples(self, base: SeasonalBase, origins: range) -> TensorDataset: ...
    def _fresh(self, data: TensorDataset, c: Candidate) -> Any: ...
    def _predict(self, learner: Any, base: SeasonalBase, origin: int) -> np.ndarray: ...


def choose(h: Validated) -> tuple[Candidate, bool]:
    """The correction's setting, and whether it beat the base alone on validation (the
    scores land in ``h.validation``).

    ``hybrid`` and ``hybrid-retrain`` validate the same candidates on the same inputs:
    the second one in a process reuses the first one's result (same seeds, same result).
    """
    key = h._choice_key()
    features = h.inputs.features
    if id(features) not in _CHOICES:
        _CHOICES[id(features)] = {}
        weakref.finalize(features, _CHOICES.pop, id(features), None)
    done = _CHOICES[id(features)]
    if key not in done:
        done[key] = validate(h)
    candidate, helps, h.validation = done[key]
    return candidate, helps


def validate(h: Validated) -> tuple[Candidate, bool, list[dict]]:
    """The best corrected candidate, whether it beat the best base alone, and every score."""
    windows = [w for w in h.windows if w <= h.pretrain] or [h.windows[0]]
    if h.validate_days <= 0:
        return Candidate(windows[-1], h.seasons, h.lrs[0], h.losses[0], h.epochs[0],
                         h.ets_every[0]), True, h.validation
    end = h.pretrain
    need = history_needed("hybrid", h.seasons, h.period, h.horizon, h.validate_days,
                          h.lookback)
    if end < need:
        raise RetainError(f"the hybrid needs {need} pre-training steps (two seasonal "
                          f"cycles and {h.validate_days} validation days), got {end}")
    scores = []
    for seasons in h.season_sets:
        for w in windows:
            for every in h.ets_every:
                c = Candidate(w, seasons, ets_every=every)
                scores.append((score(h, c, h._base(c), end), c))
    best_base = min(scores, key=lambda s: s[0])
    base = h._base(best_base[1])
    corrected = []
    for loss in h.losses:
        for lr in h.lrs:
            for epochs in h.epochs:
                c = replace(best_base[1], lr=lr, loss=loss, epochs=epochs)
                corrected.append((score(h, c, base, end), c))
    scores += corrected
    validation = [{**c.describe(), "validation_mae": s} for s, c in scores]
    best = min(corrected, key=lambda s: s[0])
    return best[1], best[0] < best_base[0], validation


def score(h: Validated, c: Candidate, base: SeasonalBase, end: int) -> float:
    """MAE of ``c`` test-then-train over the last ``validate_days`` before ``end``."""
    first = end - h.validate_days * h.period
    learner = None if c.lr is None else h._fresh(h._examples(base, h._origins(first)), c)
    errors = []
    for origin in range(first, end - h.horizon + 1, h.period):
        forecast = h._predict(learner, base, origin)
        errors.append(np.abs(forecast - h.target[origin:origin + h.horizon]).mean())
        if learner is not None:
            learner.learn(h._examples(base, range(origin - h.horizon + 1, min(
                origin + h.period, end) - h.horizon + 1)), epochs=c.epochs,
                batch_size=h.batch_size)
    return float(np.mean(errors))
