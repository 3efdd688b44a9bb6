"""Per-channel standardisation fitted on the initial training period only.

Why only that period: statistics of later rows would tell the model about data it has not
seen yet (a leak), and a scaler that changed during the stream would silently change what
the learned weights mean. The scaler is saved next to the model weights (see
:mod:`retain.forecasting.bundle`) so forecasts can be turned back into units later.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from retain.errors import RetainError


@dataclass(frozen=True)
class Scaler:
    """``z = (value - mean) / std`` per channel; channel 0 is the forecast target."""

    names: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def fit(cls, values: np.ndarray, names: Sequence[str]) -> Scaler:
        """Statistics of ``values`` [rows, channels]; a constant channel gets std 1."""
        if values.ndim != 2 or values.shape[1] != len(names) or len(values) < 2:
            raise RetainError(
                f"need at least 2 rows of {len(names)} channels to fit a scaler, "
                f"got shape {values.shape}"
            )
        mean = values.mean(axis=0)
        std = values.std(axis=0)
        std = np.where(std > 1e-12, std, 1.0)
        return cls(tuple(names), tuple(map(float, mean)), tuple(map(float, std)))

    def transform(self, values: np.ndarray) -> np.ndarray:
        return (values - np.asarray(self.mean)) / np.asarray(self.std)

    def inverse_target(self, z: torch.Tensor) -> torch.Tensor:
        """Scaled forecasts back to the target's units."""
        return z * self.std[0] + self.mean[0]

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Scaler:
        try:
            return cls(tuple(data["names"]), tuple(map(float, data["mean"])),
                       tuple(map(float, data["std"])))
        except (KeyError, TypeError, ValueError) as exc:
            raise RetainError(f"not a saved scaler ({exc!r})") from None
