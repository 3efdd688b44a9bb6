"""The settings of a forecaster and of a backtest: which model, windows, days and
hyper-parameters, with the checks that a series can carry them.

:class:`Experiment` is what ``retain forecast`` runs and what a deployed
:class:`~retain.forecasting.forecaster.Forecaster` is built with, so both make the same
choices; running it over a series is :func:`retain.forecasting.backtest.run_experiment`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from retain.errors import RetainError
from retain.forecasting.approaches import Recipe, Settings

#: the contenders a practitioner would compare, retain's previous best (replay) and the
#: hybrid with its daily-retraining reference; every other approach is one --approaches away
DEFAULT_APPROACHES = ("seasonal-naive", "mstl", "gbm", "replay", "hybrid", "hybrid-retrain")


@dataclass(frozen=True)
class Experiment:
    """Everything a run depends on. Durations are in days; ``None`` lookback/horizon mean one
    week / one update period of steps."""

    model: str = "cnn"
    approaches: tuple[str, ...] = DEFAULT_APPROACHES
    lookback: int | None = None
    horizon: int | None = None
    stride: int = 1
    pretrain_days: int = 56
    period: str = "1D"
    season: str = "7D"
    days: int | None = None
    model_options: dict[str, Any] = field(default_factory=dict)
    recipe: Recipe = Recipe()
    #: overrides of the approaches' hyper-parameters (fields of :class:`Settings`)
    hyper: dict[str, Any] = field(default_factory=dict)
    detectors: tuple[str, ...] = ("adwin", "page-hinkley")
    validate_days: int | None = None  # forecast only the last days of the pre-training period
    seed: int = 0

    @classmethod
    def quick(cls, **changes: Any) -> Experiment:
        """Small enough for tests and a first look: seconds, not minutes."""
        base = cls(lookback=96, pretrain_days=28, days=5, model_options={"width": 8},
                   recipe=Recipe(epochs=1),
                   hyper={"epochs": 1, "retrain_every": 2, "validate_days": 7,
                          "windows_days": (21,), "hybrid_lrs": (3e-4,),
                          "hybrid_losses": ("l1",), "hybrid_epochs": 1,
                          "hybrid_update_epochs": (1,), "hybrid_ets_every": (1,)})
        return replace(base, **changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check_history(experiment: Experiment, pretrain: int, period: int, season: int,
                   horizon: int) -> None:
    """The statistical models and the hybrid need whole seasonal cycles and a validation
    slice inside the pre-training period: say how much, before any work."""
    from retain.forecasting.seasonal import history_needed, seasonal_periods

    hyper = {**{f: getattr(Settings, f) for f in ("validate_days", "hybrid_lookback_days")},
             **experiment.hyper}
    seasons = seasonal_periods(period, season)
    for name in experiment.approaches:
        need = history_needed(name, seasons, period, horizon, hyper["validate_days"],
                              hyper["hybrid_lookback_days"] * period)
        if need > pretrain:
            raise RetainError(
                f"{name} needs {need} steps ({-(-need // period)} days) of pre-training: two "
                f"cycles of its {max(seasons, default=1)}-step season and "
                f"{hyper['validate_days']} validation days; this run pre-trains on "
                f"{pretrain} steps. Use --pretrain-days {-(-need // period)} or more (the "
                f"series must also be that much longer), or leave {name} out of --approaches")


def _settings(experiment: Experiment, **derived: Any) -> Settings:
    fixed = set(derived) | {"recipe", "seed"}
    known = set(Settings.__dataclass_fields__) - fixed
    unknown = sorted(set(experiment.hyper) - known)
    if unknown:
        raise RetainError(f"unknown hyper-parameter(s) {unknown}; choose from {sorted(known)}")
    return Settings(**derived, recipe=experiment.recipe, seed=experiment.seed,
                    **experiment.hyper)
