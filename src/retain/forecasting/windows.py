"""Sliding windows over one series as strided views: no window is ever copied.

A window is named by its *origin* ``t``: its input holds rows ``[t - lookback, t)`` and its
target rows ``[t, t + horizon)``. Origins run ``lookback, lookback + stride, ...``. Datasets
handed to training are :class:`WindowSet`\\ s (plain ``TensorDataset``\\ s of views, so the
Learner's tensor fast path applies) that remember their origins, which is what the leak
audits check.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.data import TensorDataset

from retain.errors import RetainError


@dataclass(frozen=True)
class WindowSpec:
    """Lookback ``L``, horizon ``H`` and the stride between consecutive origins."""

    lookback: int = 336
    horizon: int = 48
    stride: int = 1

    def __post_init__(self) -> None:
        for name in ("lookback", "horizon", "stride"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise RetainError(f"{name} must be a positive integer, got {value!r}")


class WindowSet(TensorDataset):
    """Windows ``(input [N, C, L], target [N, H])`` with the origins they came from."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, origins: range, horizon: int):
        super().__init__(x, y)
        self.origins = origins
        self.horizon = horizon

    @property
    def target_end(self) -> int:
        """One past the last row any target of this set uses (0 when empty)."""
        return self.origins[-1] + self.horizon if len(self.origins) else 0


class Windows:
    """Every complete window of ``features`` [T, C] / ``target`` [T], as views."""

    def __init__(self, features: torch.Tensor, target: torch.Tensor, spec: WindowSpec):
        n_rows = features.shape[0]
        L, H, s = spec.lookback, spec.horizon, spec.stride
        if target.shape != (n_rows,):
            raise RetainError(f"target must have shape ({n_rows},), got {tuple(target.shape)}")
        if n_rows < L + H:
            raise RetainError(
                f"the series has {n_rows} steps, shorter than lookback + horizon = {L + H}; "
                f"use a longer series or a shorter --lookback/--horizon"
            )
        self.spec = spec
        self.features = features
        # [T - H, C] -> [N, C, L] and [T - L, ] -> [N, H]: strided views of the same storage
        self.x = features[: n_rows - H].t().unfold(1, L, s).transpose(0, 1)
        self.y = target[L:].unfold(0, H, s)
        self.origins = range(L, L + s * len(self.y), s)

    def __len__(self) -> int:
        return len(self.origins)

    def completed(self, start: int, stop: int) -> WindowSet:
        """Windows whose last target row lies in ``[start, stop)``: the ones that revealing
        rows ``[start, stop)`` completes (``start=0`` gives all windows known at ``stop``)."""
        L, H, s = self.spec.lookback, self.spec.horizon, self.spec.stride
        first = max(0, -(-(start - H + 1 - L) // s))
        last = min(len(self), (stop - H - L) // s + 1)
        last = max(first, last)
        return WindowSet(self.x[first:last], self.y[first:last],
                         self.origins[first:last], H)

    def input_at(self, origin: int) -> torch.Tensor:
        """The model input [1, C, L] for a forecast issued at row ``origin``."""
        L = self.spec.lookback
        if not L <= origin <= self.features.shape[0]:
            raise RetainError(f"origin {origin} needs {L} rows of history inside the series")
        return self.features[origin - L : origin].t().unsqueeze(0)
