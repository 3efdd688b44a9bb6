"""The backbones the pretrained-model benchmarks train themselves (no model hub here): a small
CNN for MNIST images and the vibration CNN's feature layers, each with a linear head."""

from __future__ import annotations

import torch
from torch import nn


def mnist_backbone(width: int = 32, features: int = 128) -> nn.Sequential:
    """Two conv blocks and a dense layer: ``[N, 1, 28, 28] -> [N, features]``."""
    return nn.Sequential(
        nn.Conv2d(1, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(2 * width * 49, features), nn.ReLU())


def subset(data, classes, limit: int | None = None, seed: int = 0):
    """The samples of ``classes`` (at most ``limit``, drawn at random) as a TensorDataset."""
    x, y = data.tensors[:2]
    keep = torch.isin(y, torch.as_tensor(classes)).nonzero().squeeze(1)
    if limit is not None and limit < len(keep):
        g = torch.Generator().manual_seed(seed)
        keep = keep[torch.randperm(len(keep), generator=g)[:limit]].sort().values
    return torch.utils.data.TensorDataset(x[keep], y[keep])
