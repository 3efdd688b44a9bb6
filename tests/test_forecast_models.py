"""Forecasting models: any lookback and horizon, registered, trainable with a Learner."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from retain import Learner
from retain.errors import RetainError
from retain.models import MODELS
from retain.models.forecasting import FORECASTERS, ForecastCNN


@pytest.mark.parametrize("name", sorted(FORECASTERS))
@pytest.mark.parametrize("lookback,horizon", [(7, 1), (48, 24), (336, 48), (500, 3)])
def test_every_model_maps_any_window_to_its_horizon(name, lookback, horizon):
    model = FORECASTERS[name](3, lookback, horizon)
    assert model(torch.randn(5, 3, lookback)).shape == (5, horizon)
    assert MODELS[f"forecast-{name}"] is FORECASTERS[name]


def test_cnn_patches_long_windows_and_measures_its_head():
    model = ForecastCNN(2, 336, 48)
    assert model.body[0].stride == (6,)  # 336 steps -> 56 positions
    assert model.head.in_features == 16 * 14  # two poolings: 56 -> 28 -> 14
    assert ForecastCNN(2, 7, 1).body[0].stride == (1,)


def test_forecast_is_relative_to_the_window_level():
    """Shifting the target channel by a constant shifts the forecast by the same constant."""
    torch.manual_seed(0)
    model = ForecastCNN(2, 48, 12).eval()
    x = torch.randn(4, 2, 48)
    shifted = x.clone()
    shifted[:, 0] += 3.0
    torch.testing.assert_close(model(shifted), model(x) + 3.0, atol=1e-5, rtol=0)


def test_wrong_input_shape_is_a_clear_error():
    model = ForecastCNN(3, 48, 12)
    with pytest.raises(RetainError, match=r"expects inputs \[batch, 3, 48\], got \(2, 3, 40\)"):
        model(torch.randn(2, 3, 40))
    with pytest.raises(RetainError, match="must be >= 1"):
        ForecastCNN(3, 0, 12)


@pytest.mark.parametrize("name", sorted(FORECASTERS))
def test_models_fit_a_simple_pattern_with_a_learner(name):
    torch.manual_seed(0)
    t = torch.arange(400, dtype=torch.float32)
    series = torch.sin(2 * torch.pi * t / 24)
    x = series.unfold(0, 48, 1)[:-12].unsqueeze(1)  # [N, 1, 48]
    y = series[48:].unfold(0, 12, 1)
    model = FORECASTERS[name](1, 48, 12)
    learner = Learner(model, torch.optim.Adam(model.parameters(), lr=3e-3), loss=nn.MSELoss())
    data = torch.utils.data.TensorDataset(x, y)
    before = learner.evaluate(data)
    learner.learn(data, epochs=5, batch_size=32)
    assert learner.evaluate(data) < 0.2 * before
