"""A statistical base that is cheap to refresh every day, and a network that learns its errors.

In the spirit of Smyl's ES-RNN (M4's winner): the seasonal structure and the level come from
a statistical model, and the network only learns what that model gets wrong, from the recent
history, the calendar, the covariates and the base's own recent errors.

- **Base** (:class:`~retain.forecasting.seasonal.SeasonalBase`): the MSTL decomposition over
  the day and the week (statsmodels' implementation, which statsforecast's ``mstl`` wraps,
  so that STL can run with R's settings: the LOESS interpolation steps, ``jump``, of a tenth
  of each smoothing window and 2 inner iterations, where statsmodels evaluates every point 5
  times), refreshed at the start of every day on a trailing window: a refresh costs about a
  seventieth of statsmodels' exact fit and stays close to it; AutoETS on the deseasonalised
  series, at one of two cadences chosen by validation: its parameters refit at every refresh
  (``ets_every=1``) or once every ``ets_every`` refreshes, its form (error, trend, damping)
  searched by AICc every ``form_every`` refreshes (four weeks) and kept between. A forecast
  from any origin uses only rows before it: the seasonal profile of the last refresh at or
  before the origin, extrapolated, the last ETS fit, and the deseasonalised history up to
  the origin.
- **Correction** (:class:`~retain.forecasting.correction.CorrectionEnsemble`): the mean of a
  few small CNNs (seeds apart, packed into one network) over the last ``lookback`` steps of
  every channel plus two more: the base forecast over the horizon and the base's error over
  the last day. Trained once on the pre-training period, then updated incrementally every
  day with replay, like the other incremental approaches.
- **Chosen by validation** (:mod:`~retain.forecasting.hybrid_choice`): the base's trailing
  window, seasons (the day alone, or the day and the week) and ETS cadence, the correction's
  loss, learning rate and update epochs, and whether the correction starts switched on,
  chosen in :meth:`Hybrid.start` test-then-train over the last ``validate_days`` of the
  pre-training period, never on a forecast day; reported as ``Hybrid.chosen``.
- **Weighed as it goes**: the forecast is ``base + w · correction``. The correction keeps
  learning every day, and ``w`` (0, ¼, ½, ¾ or 1) is re-chosen after each revealed day as
  the weight with the lowest MAE over the last ``blend_days`` days already revealed, from the
  forecasts actually made on them: a prequential choice, so day ``d``'s weight depends only on
  days before ``d``. When the series changes so that the network starts to help (or to hurt),
  the forecast follows within days instead of keeping the pre-training verdict.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import torch
from torch import nn
from torch.utils.data import TensorDataset

from retain.errors import RetainError
from retain.forecasting.approaches import NO_WORK, Approach, Recipe, Settings
from retain.forecasting.correction import CorrectionEnsemble, correction_learner
from retain.forecasting.features import Inputs
from retain.forecasting.hybrid_choice import LOSSES, Candidate, choose
from retain.forecasting.seasonal import SeasonalBase, seasonal_periods
from retain.forecasting.windows import WindowSet
from retain.learner import Learner, LearnStats

#: the weights of the correction the hybrid chooses among, day by day
WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)


class Hybrid(Approach):
    """The base plus an incrementally updated correction network (see the module doc).

    Args:
        seasons: seasonal periods in steps.
        horizon, period: forecast steps, and steps between origins.
        lookback: steps of history the correction sees.
        windows: candidate trailing windows of the base, in steps.
        lrs, losses: candidate update learning rates and losses of the correction.
        epochs: candidate passes of each daily update over the new day's windows (an int:
            that one).
        ets_every: candidate refreshes between fits of the base's ETS: 1 refits its
            parameters every day, 7 once a week, applying that fit to each day's
            deseasonalised history in between (its form searched every four weeks either
            way).
        validate_days: days at the end of the pre-training period the candidates are
            compared on (0: take the first candidate with a correction).
        blend_days: revealed days the correction's weight is chosen on, every day (0: keep
            the weight validation started with).
        members: correction networks averaged (:class:`CorrectionEnsemble`), trained
            together on the same batches, each on its own error.
        retrain_every: ``None`` updates the correction incrementally; ``k`` retrains it from
            scratch every ``k`` days instead (the daily-retraining reference).

    >>> from retain.forecasting import Experiment, run_experiment, synthetic
    >>> run, _ = run_experiment(synthetic(days=30), Experiment.quick(approaches=("hybrid",),
    ...                                                              days=2))
    >>> chosen = run.runs["hybrid"].chosen  # on the pre-training period's last 7 days
    >>> chosen["base_window_steps"], chosen["update_lr"]
    (504, 0.0003)
    """

    kind = "incremental"
    family = "hybrid"
    uses_pretrained = False

    def __init__(self, seasons: Sequence[int], horizon: int, period: int, lookback: int,
                 windows: Sequence[int], lrs: Sequence[float] = (1e-4, 3e-4, 1e-3),
                 losses: Sequence[str] = ("l1", "mse"), validate_days: int = 14,
                 recipe: Recipe = Recipe(epochs=5), epochs: int | Sequence[int] = 2,
                 batch_size: int = 16,
                 replay_capacity: int = 2000, jump: int | None = None, width: int = 16,
                 retrain_every: int | None = None, seed: int = 0, blend_days: int = 14,
                 ets_every: Sequence[int] = (1,), members: int = 1):
        if not seasons:
            raise RetainError("the hybrid needs a seasonal period longer than one step")
        unknown = [loss for loss in losses if loss not in LOSSES]
        if unknown:
            raise RetainError(f"unknown loss(es) {unknown}; choose from {list(LOSSES)}")
        self.seasons, self.horizon, self.period = tuple(seasons), horizon, period
        self.lookback, self.windows = lookback, tuple(windows)
        self.lrs, self.losses, self.validate_days = tuple(lrs), tuple(losses), validate_days
        self.blend_days = blend_days
        # the base's candidate seasons: all of them, or the shortest alone (a weekly cycle
        # is noise in, say, temperature)
        self.season_sets = [self.seasons] + ([self.seasons[:1]] if len(self.seasons) > 1
                                             else [])
        self.epochs = (epochs,) if isinstance(epochs, int) else tuple(epochs)
        if not self.epochs or min(self.epochs) < 1:
            raise RetainError(f"update epochs must be >= 1, got {epochs}")
        self.ets_every = tuple(ets_every)
        if not self.ets_every or min(self.ets_every) < 1:
            raise RetainError(f"ETS fits must be every >= 1 refreshes, got {ets_every}")
        self.recipe, self.batch_size = recipe, batch_size
        self.replay_capacity, self.jump, self.width = replay_capacity, jump, width
        if members < 1:
            raise RetainError(f"the correction needs at least one member, got {members}")
        self.members = members
        self.retrain_every, self.seed = retrain_every, seed
        self.name = "hybrid" if retrain_every is None else "hybrid-retrain"
        if retrain_every is not None:
            self.kind = "retrain"
            self.every = retrain_every
            self.daily_samples: list[int] = []
            #: seconds each update spent training from scratch (the rest, the base
            #: refresh and the windows, a daily retrain would pay the same)
            self.fit_seconds: list[float] = []
        self.chosen: dict = {}
        self.validation: list[dict] = []

    # -- data ---------------------------------------------------------------------------
    def prepare(self, inputs: Inputs, pretrain: int, period: int) -> None:
        self.inputs, self.pretrain = inputs, pretrain
        self.target = inputs.target.double().numpy()

    def _window(self, base: SeasonalBase, origin: int) -> torch.Tensor:
        if origin not in base.inputs:
            base.inputs[origin] = self._build_window(base, origin)
        return base.inputs[origin]

    def _build_window(self, base: SeasonalBase, origin: int) -> torch.Tensor:
        L, H, P = self.lookback, self.horizon, self.period
        x = torch.zeros(self.inputs.features.shape[1] + 2, L)
        x[:-2] = self.inputs.features[origin - L:origin].t()
        x[-2, L - min(H, L):] = torch.from_numpy(base.at(origin)[:min(H, L)]).float()
        m = min(H, P, L)
        if origin - P >= base.first:
            x[-1, L - P:L - P + m] = torch.from_numpy(
                self.target[origin - P:origin - P + m] - base.at(origin - P)[:m]).float()
        return x

    def _usable(self, base: SeasonalBase, origins: range) -> range:
        """The origins with a day of base errors and a full lookback behind them."""
        first = max(base.first + self.period, self.lookback)
        return origins[max(0, -(-(first - origins.start) // origins.step)):]

    def _examples(self, base: SeasonalBase, origins: range) -> TensorDataset:
        origins = self._usable(base, origins)
        if not origins:
            return TensorDataset(torch.zeros(0, self.inputs.features.shape[1] + 2,
                                             self.lookback),
                                 torch.zeros(0, self.members, self.horizon))
        x = torch.stack([self._window(base, o) for o in origins])
        y = torch.stack([torch.from_numpy(self.target[o:o + self.horizon] - base.at(o))
                         for o in origins]).float()
        # every member's target (a view): the loss over [N, K, H] is the members' mean loss
        return TensorDataset(x, y[:, None].expand(-1, self.members, -1))

    def _origins(self, stop: int) -> range:
        """Origins of every window whose target ends before row ``stop``."""
        return range(0, stop - self.horizon + 1)

    # -- model --------------------------------------------------------------------------
    def _fresh(self, data: TensorDataset, c: Candidate) -> Learner:
        """A correction trained from scratch on ``data``, ready for daily updates."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            model = CorrectionEnsemble(self.inputs.features.shape[1] + 2, self.lookback,
                                       self.horizon, self.width, self.members)
        return correction_learner(model, data, LOSSES[c.loss](), self.recipe.epochs,
                                  self.recipe.batch_size, self.recipe.lr, c.lr,
                                  self.replay_capacity, self.seed)

    def _correction(self, learner: Learner | None, base: SeasonalBase,
                    origin: int) -> np.ndarray:
        """The members' mean correction from ``origin``."""
        if learner is None:
            return np.zeros(self.horizon)
        learner.model.eval()
        with torch.inference_mode():
            out = learner.model(self._window(base, origin)[None])[0].mean(0)
        return out.double().numpy()

    def _predict(self, learner: Learner | None, base: SeasonalBase, origin: int) -> np.ndarray:
        return base.at(origin) + self._correction(learner, base, origin)

    def _base(self, c: Candidate) -> SeasonalBase:
        return SeasonalBase(self.target, c.seasons, self.horizon, self.period,
                            self.pretrain, c.window, self.jump, ets_every=c.ets_every)

    def _choice_key(self) -> tuple:
        return (self.seasons, self.horizon, self.period, self.lookback, self.windows, self.lrs,
                self.losses, self.validate_days, self.recipe, self.epochs, self.batch_size,
                self.replay_capacity, self.jump, self.width, self.seed, self.pretrain,
                self.ets_every, self.members)

    # -- the protocol's calls -------------------------------------------------------------
    def start(self, model: nn.Module) -> None:
        self.candidate, helps = choose(self)
        self.weight = 1.0 if helps else 0.0
        self.weights: list[float] = []  # the weight each forecast day used
        self.chosen = {**self.candidate.describe(), "correction_weight_at_start": self.weight}
        self._made: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # origin: base, correction
        self.base = self._base(self.candidate)
        self._revealed = self.pretrain
        self.learner = self._fresh(self._examples(self.base, self._origins(self.pretrain)),
                                   self.candidate)
        self.model = self.learner.model

    @property
    def note(self) -> str:
        """The settings chosen on the pre-training period, and the days at each weight."""
        if not self.chosen:
            return ""
        days = {w: self.weights.count(w) for w in WEIGHTS if w in self.weights}
        return ("chosen on the pre-training period: " + ", ".join(
            f"{k}={v}" for k, v in self.chosen.items()) + "; days at each correction weight: "
            + ", ".join(f"{w:g}: {n}" for w, n in days.items()))

    def observe(self, revealed: int) -> None:
        self._revealed = revealed

    def export(self) -> dict:
        """Everything but the weights that a later forecast needs (``bundle.save_hybrid``)."""
        c = self.candidate
        return {"model": "hybrid", "width": self.width, "members": self.members,
                "lookback": self.lookback,
                "horizon": self.horizon, "period": self.period, "base_seasons": list(c.seasons),
                "base_window": c.window, "base_ets_fit_every": c.ets_every, "jump": self.jump,
                "correction_weight": self.weight,
                "chosen": self.chosen}

    def forecast(self, x: torch.Tensor, past: torch.Tensor) -> torch.Tensor:
        origin = len(past)
        base = self.base.at(origin)
        correction = self._correction(self.learner, self.base, origin)
        self._made[origin] = (base, correction)
        self.weights.append(self.weight)
        return torch.from_numpy(base + self.weight * correction).float()

    def _reweigh(self) -> None:
        """The weight with the lowest MAE over the last ``blend_days`` revealed days."""
        done = [o for o in sorted(self._made) if o + self.horizon <= self._revealed]
        done = done[-self.blend_days:]
        if not done or self.blend_days <= 0:
            return
        for old in [o for o in self._made if o < done[0]]:  # out of the window for good
            del self._made[old]
        base, correction = (np.stack(a) for a in zip(*(self._made[o] for o in done),
                                                      strict=True))
        actual = np.stack([self.target[o:o + self.horizon] for o in done])
        maes = [np.abs(base + w * correction - actual).mean() for w in WEIGHTS]
        self.weight = WEIGHTS[int(np.argmin(maes))]

    def fallback(self) -> Approach:
        """What forecasts in this hybrid's place after it failed: its base alone."""
        return BaseOnly(self.base)

    # -- a deployed hybrid: new rows, and its state ---------------------------------------
    def extend(self, inputs: Inputs) -> None:
        """Take inputs that add rows after those of :meth:`prepare` (a deployed forecaster's
        new day); rows already seen must be unchanged, which the forecaster checks."""
        self.inputs = inputs
        self.target = inputs.target.double().numpy()
        self.base.target = self.target

    def compact(self) -> None:
        """Drop cached base fits and windows no later day reads (see :meth:`state_dict`)."""
        self.base.compact(self._keep_from())

    def _keep_from(self) -> int:
        # the next update trains on origins from revealed - H + 1, whose windows read the
        # base forecast one period earlier too
        return self._revealed - self.horizon - 2 * self.period

    def state_dict(self) -> dict:
        """Everything a deployed hybrid needs to go on exactly: the choice made on the
        pre-training period, the correction's learner (weights, optimizer, replay memory,
        generators), the weight and the forecasts it is re-chosen on, and the base."""
        if not hasattr(self, "learner") or self.retrain_every is not None:
            raise RetainError("only a started, incrementally updated hybrid has a state")
        self.compact()
        return {"candidate": self.candidate.describe() | {"window": self.candidate.window,
                                                         "seasons": list(self.candidate.seasons)},
                "weight": self.weight, "weights": list(self.weights), "chosen": self.chosen,
                "validation": self.validation, "revealed": self._revealed,
                "made": {o: [b, c] for o, (b, c) in self._made.items()},
                "learner": self.learner.state_dict(), "base": self.base.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        r"""Restore :meth:`state_dict` into a hybrid built with the same arguments and
        :meth:`prepare`\ d on the same rows, in place of :meth:`start`."""
        c = state["candidate"]
        self.candidate = Candidate(int(c["window"]), tuple(c["seasons"]), c.get("update_lr"),
                                   c.get("loss", "l1"), int(c.get("update_epochs", 2)),
                                   int(c["base_ets_fit_every"]))
        self.weight, self.weights = float(state["weight"]), list(state["weights"])
        self.chosen, self.validation = state["chosen"], state["validation"]
        self._revealed = int(state["revealed"])
        self._made = {int(o): (b, c) for o, (b, c) in state["made"].items()}
        self.base = self._base(self.candidate)
        self.base.load_state_dict(state["base"])
        self.learner = self._fresh(self._examples(self.base, range(0)), self.candidate)
        self.learner.load_state_dict(state["learner"])
        self.model = self.learner.model

    def update(self, new: WindowSet, history: WindowSet) -> LearnStats:
        start = time.perf_counter()
        self.base.at(self._revealed)  # tomorrow's refresh belongs to today's update cost
        self._reweigh()
        if self.retrain_every is not None:
            return self._retrain(start)
        data = self._examples(self.base, new.origins)
        stats = self.learner.learn(data, epochs=self.candidate.epochs,
                                   batch_size=self.batch_size)
        # replay appends as many memory rows as each batch holds (the memory is never empty:
        # it starts with the pre-training windows)
        return replace(stats, samples=stats.samples * 2, seconds=time.perf_counter() - start)

    def _retrain(self, start: float) -> LearnStats:
        # what a daily retrain would process is counted every day; the windows are built
        # only on the days a retrain runs
        origins = self._origins(self._revealed)
        self.daily_samples.append(len(self._usable(self.base, origins)) * self.recipe.epochs)
        if len(self.daily_samples) % self.every:
            self.fit_seconds.append(0.0)
            return replace(NO_WORK, seconds=time.perf_counter() - start)
        data = self._examples(self.base, origins)
        fit = time.perf_counter()
        self.learner = self._fresh(data, self.candidate)
        self.fit_seconds.append(time.perf_counter() - fit)
        self.model = self.learner.model
        return LearnStats(samples=len(data) * self.recipe.epochs, steps=0,
                          seconds=time.perf_counter() - start, last_loss=float("nan"))


class BaseOnly(Approach):
    """A hybrid's seasonal base without the correction: the hybrid's fallback.

    >>> import numpy as np
    >>> y = 5 + np.sin(np.arange(240) * 2 * np.pi / 24) + 0.01 * np.arange(240)  # hourly
    >>> base = SeasonalBase(y, seasons=(24,), horizon=24, period=24, anchor=0, window=168)
    >>> tomorrow = BaseOnly(base).forecast(None, torch.from_numpy(y[:216]))
    >>> bool(abs(tomorrow.numpy() - y[216:]).max() < 0.05)  # the cycle and the trend
    True
    """

    name = "hybrid-base"
    uses_pretrained = False

    def __init__(self, base: SeasonalBase):
        self.base = base

    def forecast(self, x: torch.Tensor, past: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.base.at(len(past))).float()


def hybrid(s: Settings, retrain_every: int | None = None) -> Hybrid:
    """The hybrid of :data:`~retain.forecasting.approaches.APPROACHES` from its settings."""
    return Hybrid(seasonal_periods(s.period, s.season), s.horizon, s.period,
                  s.hybrid_lookback_days * s.period, [d * s.period for d in s.windows_days],
                  s.hybrid_lrs, s.hybrid_losses, s.validate_days,
                  replace(s.recipe, epochs=s.hybrid_epochs), s.hybrid_update_epochs,
                  s.batch_size, s.replay_capacity, width=s.hybrid_width,
                  retrain_every=retrain_every, seed=s.seed, blend_days=s.hybrid_blend_days,
                  ets_every=s.hybrid_ets_every, members=s.hybrid_members)


def hybrid_retrain(s: Settings) -> Hybrid:
    """The hybrid's daily-retraining reference: its correction retrained from scratch every
    ``retrain_every`` days."""
    return hybrid(s, s.retrain_every)
