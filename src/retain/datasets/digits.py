"""scikit-learn's 8x8 handwritten digits: a tiny MNIST stand-in that needs no download."""

from __future__ import annotations

import functools

import numpy as np
import torch
from torch.utils.data import TensorDataset

from retain.errors import RetainError
from retain.extras import require

__all__ = ["digits"]


@functools.lru_cache(maxsize=1)
def _arrays() -> tuple[np.ndarray, np.ndarray]:
    load_digits = require("sklearn.datasets", "data").load_digits

    x, y = load_digits(return_X_y=True)
    return x, y


def digits(test_size: float = 0.3, seed: int = 0) -> tuple[TensorDataset, TensorDataset]:
    """Digits as ``(train, test)``: x float32 [N,1,8,8] in [0,1], y int64 (0-9).

    Ships with scikit-learn, so examples and tests run offline in well under a
    second. The split is stratified and fixed by ``seed``.
    """
    train_test_split = require("sklearn.model_selection", "data").train_test_split

    if not isinstance(test_size, float | int) or not 0 < float(test_size) < 1:
        raise RetainError(f"test_size must be a fraction between 0 and 1, got {test_size!r}.")
    x, y = _arrays()
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, test_size=float(test_size), random_state=seed, stratify=y
    )

    def wrap(xs: np.ndarray, ys: np.ndarray) -> TensorDataset:
        xt = torch.from_numpy((xs / 16.0).astype(np.float32).reshape(-1, 1, 8, 8))
        return TensorDataset(xt, torch.from_numpy(ys.astype(np.int64)))

    return wrap(x_tr, y_tr), wrap(x_te, y_te)
