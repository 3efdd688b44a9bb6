"""Forecasting a series day by day: forecast, score, then learn the revealed day.

The pieces, in the order data flows through them: :mod:`~retain.forecasting.data` (series
from the bundled data or a user's file, validated), :mod:`~retain.forecasting.features`
(channels and the scaler), :mod:`~retain.forecasting.windows` (sliding windows as views),
:mod:`~retain.forecasting.approaches` (frozen, seasonal-naive, incremental, replay, EWC,
retrain), :mod:`~retain.forecasting.protocol` (the leakage-free daily loop),
:mod:`~retain.forecasting.report` (metrics, plots, HTML; each gain's interval from
:mod:`~retain.forecasting.significance`) and
:mod:`~retain.forecasting.experiment` (all of it in one call, used by ``retain forecast``).
"""

from retain.forecasting.data import Series, elecdemand, from_frame, read_series, synthetic
from retain.forecasting.experiment import Experiment, run_experiment

__all__ = ["Experiment", "Series", "elecdemand", "from_frame", "read_series", "run_experiment",
           "synthetic"]
