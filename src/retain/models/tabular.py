"""A plain multi-layer perceptron for tabular rows (and flattened images).

It keeps every constructor argument as an attribute of the same name, so a checkpoint can
record ``{"name": "mlp", "args": {...}}`` and rebuild it without the user's code.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from retain.errors import RetainError

__all__ = ["MLP"]


class MLP(nn.Module):
    """``Flatten -> (Linear -> ReLU -> Dropout) per hidden layer -> Linear``.

    Args:
        in_features: values per sample (after flattening).
        out_features: classes (classification) or targets (regression).
        hidden: widths of the hidden layers.
        dropout: dropout probability after each hidden layer (0 disables it).

    >>> MLP(4, 3, hidden=(8,))(torch.zeros(2, 4)).shape
    torch.Size([2, 3])
    """

    def __init__(self, in_features: int, out_features: int,
                 hidden: Sequence[int] = (100, 100), dropout: float = 0.0):
        super().__init__()
        hidden = tuple(int(h) for h in hidden)
        if in_features < 1 or out_features < 1 or any(h < 1 for h in hidden):
            raise RetainError(
                f"MLP sizes must be >= 1; got in_features={in_features}, "
                f"out_features={out_features}, hidden={hidden}")
        if not 0.0 <= dropout < 1.0:
            raise RetainError(f"dropout must be in [0, 1), got {dropout}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.hidden, self.dropout = hidden, float(dropout)
        layers: list[nn.Module] = [nn.Flatten()]
        width = self.in_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            if self.dropout > 0:
                layers.append(nn.Dropout(self.dropout))
            width = h
        layers.append(nn.Linear(width, self.out_features))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)
