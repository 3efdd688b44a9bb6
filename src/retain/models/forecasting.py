"""Multi-horizon forecasters: input windows [N, C, L] -> forecasts [N, H].

Channel 0 of the input is the (scaled) target. Two choices shared by every model:

- the target is forecast relative to its mean level over the window, and that level is added
  back to the output: demand in winter sits well above the summer it was first trained on,
  and a network that works in deviations does not have to extrapolate to unseen levels;
- a linear map from the target's lookback to the horizon (the classic linear
  autoregression) is added to the network's output, so the network only learns what is left
  over: the linear part alone is a strong baseline for load series, and rediscovering it
  from a few weeks of data would take a network far more epochs.
"""

from __future__ import annotations

import torch
from torch import nn

from retain.errors import RetainError

__all__ = ["FORECASTERS", "ForecastCNN", "ForecastGRU", "ForecastMLP"]


class _Forecaster(nn.Module):
    """Shape checks and the linear autoregressive skip shared by all forecasters."""

    def __init__(self, in_channels: int, lookback: int, horizon: int):
        super().__init__()
        if min(in_channels, lookback, horizon) < 1:
            raise RetainError(
                f"in_channels, lookback and horizon must be >= 1, got "
                f"{in_channels}, {lookback}, {horizon}"
            )
        self.in_channels, self.lookback, self.horizon = in_channels, lookback, horizon
        self.linear = nn.Linear(lookback, horizon)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[1] != self.in_channels or x.shape[2] != self.lookback:
            raise RetainError(
                f"{type(self).__name__} expects inputs [batch, {self.in_channels}, "
                f"{self.lookback}], got {tuple(x.shape)}"
            )
        level = x[:, :1].mean(2, keepdim=True)
        x = torch.cat((x[:, :1] - level, x[:, 1:]), 1)
        return self.linear(x[:, 0]) + self.residual(x) + level[:, 0]

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, lookback={self.lookback}, horizon={self.horizon}"


class ForecastCNN(_Forecaster):
    """1-D CNN: a strided "patch" convolution that cuts the window to at most ~64 positions
    (half-hourly load is smooth, and convolutions over hundreds of positions are what makes
    a CNN slow on a CPU), then ``depth`` blocks of convolution + ReLU + max-pooling (pooling
    only while the sequence is long enough) and a linear head whose input size is measured,
    not assumed, so any lookback and horizon work."""

    def __init__(self, in_channels: int, lookback: int, horizon: int, width: int = 16,
                 kernel: int = 5, depth: int = 2, patch: int | None = None):
        super().__init__(in_channels, lookback, horizon)
        self.width, self.kernel, self.depth, self.patch = width, kernel, depth, patch  # recipe
        patch = patch or max(1, -(-lookback // 64))
        layers: list[nn.Module] = [nn.Conv1d(in_channels, width, patch, stride=patch),
                                   nn.ReLU()]
        length = lookback // patch
        for _ in range(depth):
            layers += [nn.Conv1d(width, width, kernel, padding=kernel // 2), nn.ReLU()]
            if length >= 2 * kernel:
                layers.append(nn.MaxPool1d(2))
                length //= 2
        self.body = nn.Sequential(*layers, nn.Flatten())
        with torch.no_grad():
            flat = self.body(torch.zeros(1, in_channels, lookback)).shape[1]
        self.head = nn.Linear(flat, horizon)

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


class ForecastMLP(_Forecaster):
    """All channels flattened into one hidden layer."""

    def __init__(self, in_channels: int, lookback: int, horizon: int, hidden: int = 128):
        super().__init__(in_channels, lookback, horizon)
        self.hidden = hidden  # kept for the checkpoint recipe
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(in_channels * lookback, hidden),
                                  nn.ReLU(), nn.Linear(hidden, horizon))

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class ForecastGRU(_Forecaster):
    """A small GRU over the window; its last state maps to the whole horizon."""

    def __init__(self, in_channels: int, lookback: int, horizon: int, hidden: int = 32):
        super().__init__(in_channels, lookback, horizon)
        self.hidden = hidden  # kept for the checkpoint recipe
        self.gru = nn.GRU(in_channels, hidden, batch_first=True)
        self.head = nn.Linear(hidden, horizon)

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        _, state = self.gru(x.transpose(1, 2))
        return self.head(state[-1])


FORECASTERS: dict[str, type[_Forecaster]] = {
    "cnn": ForecastCNN,
    "mlp": ForecastMLP,
    "gru": ForecastGRU,
}
