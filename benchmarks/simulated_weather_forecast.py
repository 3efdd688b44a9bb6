"""elecdemand with a simulated day-ahead temperature forecast, for ``--known-future``.

    python benchmarks/simulated_weather_forecast.py results/elec_tf.csv [--error-std 2.0]
    retain forecast --csv results/elec_tf.csv --time-col time --target-col Demand \\
        --covariates Temperature,WorkDay,TempForecast --known-future WorkDay,TempForecast

A deployed demand forecaster is fed a weather forecast, not the weather. elecdemand has only
the measured temperature, so this writes it with one more column, ``TempForecast``: the
measured temperature plus an AR(1) error whose correlation decays over a day
(phi = exp(-1/24) per half-hour) and whose stationary standard deviation is ``--error-std``
degrees (seed 0). Day-ahead forecasts are about this good (1.5-2.5 degC mean absolute error);
the error here is simulated, so the figure it gives sits between past-only temperature and
a perfect forecast (``--known-future WorkDay,Temperature``), and is not a real one.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def simulated_forecast(temperature: np.ndarray, error_std: float, seed: int = 0) -> np.ndarray:
    """``temperature`` plus a stationary AR(1) error starting at 0, one step per half-hour."""
    phi = float(np.exp(-1 / 24))
    shocks = np.random.default_rng(seed).standard_normal(len(temperature))
    shocks *= error_std * np.sqrt(1 - phi ** 2)
    error = np.zeros(len(temperature))
    for t in range(1, len(temperature)):
        error[t] = phi * error[t - 1] + shocks[t]
    return temperature + error


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--error-std", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    from retain.forecasting.bundled import load

    frame = load("elecdemand").frame.copy()
    temperature = frame["Temperature"].to_numpy(np.float64)
    frame["TempForecast"] = simulated_forecast(temperature, args.error_std, args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.out)
    mae = np.abs(frame["TempForecast"].to_numpy() - temperature).mean()
    print(f"wrote {args.out}: {len(frame)} rows, TempForecast's mean absolute error "
          f"{mae:.2f} degC (error std {args.error_std})")


if __name__ == "__main__":
    main()
