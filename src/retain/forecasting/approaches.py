"""Ways to keep a forecaster current: the interface they share, the network ones, their
settings and the catalog of every approach by name.

An approach forecasts from the past, then learns each new day. A deployed
:class:`~retain.forecasting.forecaster.Forecaster` drives one (the hybrid or a network
here); the daily protocol of :mod:`retain.forecasting.backtest` drives several side by side,
from the same pre-trained model over the same days, calling :meth:`Approach.forecast` with
data up to the forecast origin only and :meth:`Approach.update` only after the forecast day
is revealed.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, replace

import torch
from torch import nn

from retain.catalog import Catalog
from retain.drift import LRBoost
from retain.errors import RetainError
from retain.forecasting.features import Inputs
from retain.forecasting.windows import WindowSet
from retain.learner import Learner, LearnStats
from retain.strategies import Replay, Strategy

NO_WORK = LearnStats(samples=0, steps=0, seconds=0.0, last_loss=float("nan"))


@dataclass(frozen=True)
class Recipe:
    """How a model is trained from scratch: pre-training, and every full retrain."""

    epochs: int = 3
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0


def train_from_scratch(build: Callable[[], nn.Module], data: WindowSet, recipe: Recipe,
                       seed: int = 0) -> tuple[nn.Module, LearnStats]:
    """A fresh model (same initial weights for the same ``seed``) trained on ``data``."""
    with torch.random.fork_rng(devices=[]):  # seed the weights, not the caller's generator
        torch.manual_seed(seed)
        model = build()
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.lr,
                                  weight_decay=recipe.weight_decay)
    learner = Learner(model, optimizer, loss=nn.MSELoss(), seed=seed)
    stats = learner.learn(data, epochs=recipe.epochs, batch_size=recipe.batch_size)
    return model.eval(), stats


class Approach:
    """The protocol's view of an approach: forecast from the past, then learn the new day.

    A new one needs a name and :meth:`forecast`; the rest have defaults (no update):

    >>> class Yesterday(Approach):
    ...     name, uses_pretrained = "yesterday", False
    ...     def forecast(self, x, past):
    ...         return past[-24:]
    >>> Yesterday().forecast(None, torch.arange(48.0))[:3]
    tensor([24., 25., 26.])

    Register it (``APPROACHES.add("yesterday", lambda settings: Yesterday())``, or the
    ``retain.forecast_approaches`` entry-point group) and ``retain forecast --approaches
    yesterday`` compares it with the rest.
    """

    name = "approach"
    #: "baseline", "statistical", "incremental" or "retrain": how the report groups it
    kind = "baseline"
    #: approaches of one family share a model; an incremental approach is compared with
    #: the retrain approach of its family
    family = "cnn"
    #: whether :meth:`start` needs the protocol's pre-trained network (else it is not
    #: trained when no approach of the run needs it)
    uses_pretrained = True
    #: said next to the results, e.g. how a cost was estimated
    note = ""
    #: whether a run may start it on any day (``Schedule.first_day``) with the same
    #: results from then on as a run from the first day: true of an approach whose forecast
    #: depends only on the rows revealed, not on what earlier updates learnt
    resumable = False

    def prepare(self, inputs: Inputs, pretrain: int, period: int) -> None:
        """Receive the whole input tensors once, before :meth:`start`. An approach that
        keeps them must read only rows before the origin when it forecasts and rows before
        the last :meth:`observe` when it updates; the leak test checks that it does."""

    def start(self, model: nn.Module) -> None:
        """Receive the pre-trained model (copy it before changing it)."""

    def observe(self, revealed: int) -> None:
        """Rows ``[0, revealed)`` are now known; called just before :meth:`update`."""

    def forecast(self, x: torch.Tensor, past: torch.Tensor) -> torch.Tensor:
        """The scaled forecast [H] from the input window ``x`` [1, C, L] and the scaled
        target ``past`` up to the origin."""
        raise NotImplementedError

    def update(self, new: WindowSet, history: WindowSet) -> LearnStats:
        """Learn after a day is revealed: ``new`` holds the windows it completed, ``history``
        every window known so far. Returns the work done."""
        return NO_WORK

    def on_drift(self) -> None:
        """The protocol's drift monitor fired on this approach's errors."""


class Frozen(Approach):
    """The pre-trained model, never updated: what happens without incremental training.

    >>> from retain.forecasting import Experiment, run_experiment, synthetic
    >>> run, _ = run_experiment(synthetic(days=31), Experiment.quick(approaches=("frozen",)))
    >>> run.runs["frozen"].samples.tolist()  # rows learnt after each of the 3 days: none
    [0, 0, 0]
    """

    name = "frozen"

    def start(self, model: nn.Module) -> None:
        self.model = copy.deepcopy(model).eval()

    def forecast(self, x: torch.Tensor, past: torch.Tensor) -> torch.Tensor:
        self.model.eval()  # updates leave it in training mode
        with torch.inference_mode():
            return self.model(x)[0]


class Incremental(Frozen):
    """Fine-tune on each new day's windows with a :class:`~retain.Learner`.

    Args:
        name: shown in results.
        optimizer: builds the optimizer from the model's parameters.
        scheduler: builds a learning-rate scheduler, stepped once per day.
        strategies: builds the strategies (replay, EWC, ...) for the learner.
        epochs, batch_size: passes over, and mini-batch size of, each day's windows.
        boost: raises the learning rate for a while when drift is detected (else ``None``).

    ``replay`` is one, with :class:`~retain.strategies.Replay` (the replayed rows count as
    work):

    >>> from retain.forecasting import Experiment, run_experiment, synthetic
    >>> run, _ = run_experiment(synthetic(days=31), Experiment.quick(approaches=("replay",)))
    >>> run.runs["replay"].samples.tolist()  # the day's 24 windows, then as many replayed
    [24, 48, 48]
    """

    kind = "incremental"

    def __init__(self, name: str, optimizer: Callable[[list], torch.optim.Optimizer],
                 scheduler: Callable[[torch.optim.Optimizer], object] | None = None,
                 strategies: Callable[[], Sequence[Strategy]] = tuple, epochs: int = 1,
                 batch_size: int = 16, boost: LRBoost | None = None, seed: int = 0):
        self.name = name
        self._optimizer, self._scheduler, self._strategies = optimizer, scheduler, strategies
        self.epochs, self.batch_size, self.boost, self.seed = epochs, batch_size, boost, seed

    def start(self, model: nn.Module) -> None:
        super().start(model)
        optimizer = self._optimizer(list(self.model.parameters()))
        scheduler = self._scheduler(optimizer) if self._scheduler else None
        self.learner = Learner(self.model, optimizer, loss=nn.MSELoss(),
                               strategies=self._strategies(), scheduler=scheduler,
                               scheduler_interval="experience", seed=self.seed)
        self._replays = [s for s in self.learner.strategies if isinstance(s, Replay)]

    def update(self, new: WindowSet, history: WindowSet) -> LearnStats:
        if len(new) == 0:
            return NO_WORK
        replayed = sum(len(r.buffer) > 0 for r in self._replays)
        boosted = self.boost.applied(self.learner.optimizer) if self.boost else nullcontext()
        with boosted:
            stats = self.learner.learn(new, epochs=self.epochs, batch_size=self.batch_size)
        # replay appends as many stored rows as each incoming batch holds
        return replace(stats, samples=stats.samples * (1 + replayed))

    def state_dict(self) -> dict:
        """The learner's state (weights, optimizer, scheduler, replay memory, generators)."""
        if self.boost is not None:
            raise RetainError(f"{self.name} cannot be saved: its drift boost keeps no state")
        return {"learner": self.learner.state_dict()}

    def load_state_dict(self, state: dict, model: nn.Module) -> None:
        """Restore :meth:`state_dict`, in place of :meth:`start`, on a model of the same
        architecture."""
        self.start(model)
        self.learner.load_state_dict(state["learner"])

    def on_drift(self) -> None:
        if self.boost is not None:
            self.boost.trigger()


@dataclass(frozen=True)
class Settings:
    """Hyper-parameters of all approaches. The defaults were chosen on a validation slice of
    the pre-training period (``retain forecast --validate``), never on the forecast days."""

    horizon: int
    season: int
    period: int
    build: Callable[[], nn.Module]
    stride: int = 1
    recipe: Recipe = Recipe()
    epochs: int = 2
    batch_size: int = 16
    adam_lr: float = 1e-4
    sgd_lr: float = 3e-4
    sgd_decay: float = 0.995
    replay_capacity: int = 2000
    stratum_days: int = 7
    ewc_lambda: float = 10.0
    ewc_gamma: float = 0.9
    fisher: str = "exact"
    fisher_samples: int = 8
    #: 8, not 7: a period prime to the week makes the fresh-retrain days (those a just
    #: retrained model forecasts) a sample of every weekday, not one weekday
    retrain_every: int = 8
    boost_factor: float = 3.0
    boost_days: int = 7
    #: candidate trailing windows (days) of mstl and of the hybrid's base, chosen on the
    #: last ``validate_days`` of the pre-training period
    windows_days: tuple[int, ...] = (28, 56)
    validate_days: int = 14
    #: mstl's trailing window in steps (``None``: chosen among ``windows_days``)
    mstl_window: int | None = None
    gbm_every: int = 7
    hybrid_lookback_days: int = 2
    hybrid_lrs: tuple[float, ...] = (1e-4, 3e-4, 1e-3)
    hybrid_losses: tuple[str, ...] = ("l1", "mse")
    hybrid_epochs: int = 5
    #: candidate passes of the hybrid's daily update over the new day, chosen by validation
    #: (adding 4 to 2 on elecdemand: the same choice, 2, for 25 s more validation)
    hybrid_update_epochs: tuple[int, ...] = (2,)
    #: candidate refreshes between fits of the hybrid's base ETS, chosen by validation
    #: (weekly won on the validation slices of elecdemand and weather-jfk and tied on the
    #: synthetic series: ``--validate 21``; see docs/forecasting.md)
    hybrid_ets_every: tuple[int, ...] = (1, 7)
    #: channels of the hybrid's correction network
    hybrid_width: int = 16
    #: revealed days the hybrid's correction weight is re-chosen on every day
    hybrid_blend_days: int = 14
    #: correction networks the hybrid averages (seeds apart; see CorrectionEnsemble)
    hybrid_members: int = 3
    seed: int = 0


def _adam(s: Settings) -> Callable[[list], torch.optim.Optimizer]:
    return lambda params: torch.optim.Adam(params, lr=s.adam_lr)


def _incremental(name: str, s: Settings, **kwargs) -> Incremental:
    kwargs.setdefault("optimizer", _adam(s))
    return Incremental(name, epochs=s.epochs, batch_size=s.batch_size, seed=s.seed, **kwargs)


def _sgd(s: Settings) -> Incremental:
    return _incremental(
        "incremental-sgd", s,
        optimizer=lambda params: torch.optim.SGD(params, lr=s.sgd_lr, momentum=0.9),
        scheduler=lambda opt: torch.optim.lr_scheduler.ExponentialLR(opt, gamma=s.sgd_decay))


def _stratified(s: Settings) -> Incremental:
    from retain.forecasting.stratified import StratifiedReplay

    rows_per_day = -(-s.period // s.stride) * s.epochs  # windows offered per day
    return _incremental("replay-stratified", s, strategies=lambda: [StratifiedReplay(
        s.replay_capacity, stratum_size=rows_per_day * s.stratum_days, seed=s.seed)])


def _online_ewc(s: Settings) -> Incremental:
    from retain.strategies import OnlineEWC

    return _incremental("online-ewc", s, strategies=lambda: [OnlineEWC(
        s.ewc_lambda, gamma=s.ewc_gamma, fisher=s.fisher, fisher_samples=s.fisher_samples)])



#: every approach by the name ``retain forecast --approaches`` takes: a factory that builds it
#: from the :class:`Settings`. The network approaches are defined here; the others are named
#: by reference and imported on first use (the hybrid, and the contenders of
#: :mod:`retain.forecasting.backtest`, which a deployed forecaster never needs). More come
#: from the ``retain.forecast_approaches`` entry-point group (``name = "module:factory"``).
APPROACHES: Catalog = Catalog("approach", {
    "frozen": lambda s: Frozen(),
    "seasonal-naive": "retain.forecasting.backtest.baselines:seasonal_naive",
    "incremental-sgd": _sgd,
    "incremental-adam": lambda s: _incremental("incremental-adam", s),
    "replay": lambda s: _incremental("replay", s, strategies=lambda: [
        Replay(s.replay_capacity, seed=s.seed)]),
    "replay-stratified": _stratified,
    "online-ewc": _online_ewc,
    "retrain": "retain.forecasting.backtest.baselines:retrain",
    "mstl": "retain.forecasting.backtest.statistical:mstl",
    "gbm": "retain.forecasting.backtest.statistical:gbm",
    "hybrid": "retain.forecasting.hybrid:hybrid",
    "hybrid-retrain": "retain.forecasting.hybrid:hybrid_retrain",
    "incremental-adam-drift": lambda s: _incremental(
        "incremental-adam-drift", s, boost=LRBoost(s.boost_factor, s.boost_days)),
}, group="retain.forecast_approaches")


def make_approaches(names: Sequence[str], settings: Settings) -> list[Approach]:
    """Approaches by name, in the given order (see :data:`APPROACHES`); every name is
    checked before any is built."""
    if len(set(names)) != len(names):
        raise RetainError(f"approach listed twice in {list(names)}")
    factories = [APPROACHES.require(n) for n in names]
    return [factory(settings) for factory in factories]
