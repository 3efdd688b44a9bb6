"""The hybrid's correction: a few small CNNs, packed into one network, that learn what the
seasonal base gets wrong (see :mod:`~retain.forecasting.hybrid`), and the learner that trains
them once, then updates them every day with replay."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import TensorDataset

from retain.errors import RetainError
from retain.learner import Learner
from retain.strategies import Replay


class CorrectionEnsemble(nn.Module):
    """Corrections [N, K, H] of the base forecast by ``members`` (K) small CNNs, from windows
    [N, C, L] whose last two channels are the base forecast (over the last H positions) and
    the base's last-day error; each member is a CNN body plus a linear map of that error
    (the part of it that persists). The hybrid forecasts with the members' mean.

    Why several: on the development series' validation slices one network's seed alone
    moves the hybrid's MAE by up to 12%; the mean of three lowered it on all four (seed
    means), and MAE being convex, the mean's error is never above the members' average
    error (docs/forecasting.md, "One network or three?"). Why packed
    into one network: the members share every input and every batch, so one convolution
    with K groups does the work of K convolutions; on a CPU, where networks this small
    cost per operation rather than per value, that is much cheaper than K networks
    (``benchmarks/hybrid_ensemble_cost.py``). Each member's parameters get gradients from
    its own output only: training them together on one batch is training each alone on the
    same batches.

    >>> model = CorrectionEnsemble(4, 96, 48, members=3)
    >>> model(torch.zeros(2, 4, 96)).shape
    torch.Size([2, 3, 48])
    """

    def __init__(self, in_channels: int, lookback: int, horizon: int, width: int = 16,
                 members: int = 1, kernel: int = 5, depth: int = 2):
        super().__init__()
        if members < 1:
            raise RetainError(f"the correction needs at least one member, got {members}")
        self.members, self.horizon = members, horizon
        k, w = members, width
        patch = max(1, -(-lookback // 64))  # as ForecastCNN: at most ~64 positions
        layers: list[nn.Module] = [nn.Conv1d(in_channels, k * w, patch, stride=patch),
                                   nn.ReLU()]
        length = lookback // patch
        for _ in range(depth):
            layers += [nn.Conv1d(k * w, k * w, kernel, padding=kernel // 2, groups=k),
                       nn.ReLU()]
            if length >= 2 * kernel:
                layers.append(nn.MaxPool1d(2))
                length //= 2
        self.body = nn.Sequential(*layers)
        features = w * length  # per member
        bound = features ** -0.5  # nn.Linear's initialisation, member by member
        self.head_weight = nn.Parameter(
            torch.empty(k, features, horizon).uniform_(-bound, bound))
        self.head_bias = nn.Parameter(torch.empty(k, 1, horizon).uniform_(-bound, bound))
        self.error = nn.Linear(lookback, k * horizon)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        z = self.body(x).reshape(n, self.members, -1).transpose(0, 1)  # [K, N, features]
        out = torch.baddbmm(self.head_bias, z, self.head_weight).transpose(0, 1)
        return out + self.error(x[:, -1]).view(n, self.members, self.horizon)

    def extra_repr(self) -> str:
        return f"members={self.members}"


def correction_learner(model: nn.Module, data: TensorDataset, loss: nn.Module, epochs: int,
                       batch_size: int, lr: float, update_lr: float | None,
                       replay_capacity: int, seed: int) -> Learner:
    """``model`` trained from scratch on ``data`` (AdamW at ``lr``), then handed to a learner
    that updates it with Adam at ``update_lr`` and a replay memory that starts with ``data``."""
    learner = Learner(model, torch.optim.AdamW(model.parameters(), lr=lr), loss=loss, seed=seed)
    if len(data):
        learner.learn(data, epochs=epochs, batch_size=batch_size)
    updater = Learner(model, torch.optim.Adam(model.parameters(), lr=update_lr), loss=loss,
                      seed=seed, strategies=[Replay(replay_capacity, seed=seed)])
    if len(data):  # the memory starts with the pre-training windows
        x, y = data.tensors
        updater.strategies[0].buffer.add(x=x, y=y)
    return updater


def from_single_network(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The weights of a hybrid saved before ensembles (one network: a ``ForecastCNN``'s
    body and head, and an error map) as a one-member ensemble's."""
    out = {}
    for key, value in weights.items():
        if key.startswith("cnn.body."):
            out[key.removeprefix("cnn.")] = value
        elif key == "cnn.head.weight":
            out["head_weight"] = value.t()[None].contiguous()
        elif key == "cnn.head.bias":
            out["head_bias"] = value[None, None]
        elif key.startswith("error."):
            out[key] = value
    return out
