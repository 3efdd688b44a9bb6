"""Forecasting a series day by day: forecast, score, then learn the revealed day.

Two sides. What a user deploys, here: :mod:`~retain.forecasting.data` (series from the bundled
data or a user's file, validated), :mod:`~retain.forecasting.features` (channels and the
scaler), :mod:`~retain.forecasting.windows` (sliding windows as views),
:mod:`~retain.forecasting.approaches` (the approach interface, the network approaches and
the catalog of all of them), the hybrid (:mod:`~retain.forecasting.seasonal` base plus
:mod:`~retain.forecasting.correction` networks, :mod:`~retain.forecasting.hybrid`),
:mod:`~retain.forecasting.intervals`, :mod:`~retain.forecasting.experiment` (the settings)
and :mod:`~retain.forecasting.forecaster` (fit, forecast, update, save, load). What measures
it, in :mod:`retain.forecasting.backtest`: the contenders, the leakage-free daily protocol,
the experiment over a series (used by ``retain forecast``) and its report.
"""

from typing import Any

from retain.forecasting.data import Series, elecdemand, from_frame, read_series, synthetic
from retain.forecasting.experiment import Experiment
from retain.forecasting.forecaster import Forecaster

__all__ = ["Experiment", "Forecaster", "Series", "elecdemand", "from_frame", "read_series",
           "run_experiment", "synthetic"]


def __getattr__(name: str) -> Any:
    # the backtest is imported when asked for, so that a process that only deploys a
    # forecaster never loads it
    if name == "run_experiment":
        from retain.forecasting.backtest.run import run_experiment

        return run_experiment
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
