"""benchmarks/simulated_weather_forecast.py: the simulated forecast's error has the declared
size and day-long memory, starts at zero, and is the same at the same seed."""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
from simulated_weather_forecast import simulated_forecast  # noqa: E402


def test_error_has_the_declared_size_and_memory():
    temperature = np.linspace(10.0, 30.0, 40_000)
    error = simulated_forecast(temperature, error_std=2.0) - temperature
    assert error[0] == 0.0
    assert 1.8 < error[2000:].std() < 2.2
    lag = 48  # one day of half-hours: correlation exp(-2) ~ 0.14
    corr = np.corrcoef(error[2000:-lag], error[2000 + lag:])[0, 1]
    assert 0.05 < corr < 0.25
    assert np.corrcoef(error[2000:-1], error[2001:])[0, 1] > 0.9


def test_same_seed_same_forecast_other_seed_another():
    temperature = np.zeros(500)
    first = simulated_forecast(temperature, 2.0)
    assert np.array_equal(first, simulated_forecast(temperature, 2.0))
    assert not np.allclose(simulated_forecast(temperature, 2.0, seed=1), first)
