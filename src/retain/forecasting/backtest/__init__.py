"""What measures a forecaster: the backtest of ``retain forecast``.

The contenders a forecaster is compared with (:mod:`~retain.forecasting.backtest.baselines`:
seasonal-naive and retraining from scratch; :mod:`~retain.forecasting.backtest.statistical`:
statsforecast's MSTL and gradient-boosted lags), the leakage-free daily loop
(:mod:`~retain.forecasting.backtest.protocol`), one call over a series
(:mod:`~retain.forecasting.backtest.run`), the metrics, report and logs
(:mod:`~retain.forecasting.backtest.report`, each gain's interval from
:mod:`~retain.forecasting.backtest.significance`).

It drives the objects a user deploys (:mod:`retain.forecasting`), never the other way round:
``lint-imports`` refuses an import of this package from the deployable modules.
"""

from retain.forecasting.backtest.protocol import ApproachRun, DailyRun, Schedule, run_daily
from retain.forecasting.backtest.run import Plan, plan, run_experiment

__all__ = ["ApproachRun", "DailyRun", "Plan", "Schedule", "plan", "run_daily", "run_experiment"]
