"""The stability gap: worst-case accuracy between experience boundaries.

Accuracy on old experiences often drops sharply in the first steps on a new one and then
recovers, so the accuracy matrix (measured at boundaries only) does not show it. De Lange,
van de Ven & Tuytelaars (ICLR 2023, "Continual evaluation for lifelong learning: identifying
the stability gap") evaluate every few steps and define, for a stream of ``T`` experiences:

- **min-ACC**: mean over experiences ``k < T-1`` of the lowest accuracy on ``k``'s test set
  at any evaluation after ``k`` was learned (while later experiences train, their ends
  included);
- **WC-ACC** (worst-case accuracy): ``1/T * a(T-1, T-1) + (1 - 1/T) * min-ACC``, where
  ``a(T-1, T-1)`` is the accuracy on the last experience once it is learned.

``curve[p, j]`` is the accuracy on experience ``j`` at evaluation point ``p`` and
``training[p]`` the experience being trained at that point (the point after experience ``i``
ends counts as ``i``).

>>> import numpy as np
>>> curve = np.array([[0.9, 0.0],    # end of experience 0
...                   [0.2, 0.5],    # 50 steps into experience 1: the gap
...                   [0.7, 0.9]])   # end of experience 1
>>> min_acc(curve, [0, 1, 1])
0.2
>>> round(wc_acc(curve, [0, 1, 1]), 3)
0.55
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from retain.errors import RetainError


def _checked(curve, training: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    C, tags = np.asarray(curve, dtype=float), np.asarray(training, dtype=int)
    if C.ndim != 2 or C.shape[0] == 0 or tags.shape != (C.shape[0],):
        raise RetainError(f"a curve needs shape [points, experiences] and one experience per "
                          f"point; got {C.shape} and {tags.shape}")
    return C, tags


def min_acc(curve, training: Sequence[int]) -> float | None:
    """Average minimum accuracy on earlier experiences after they were learned (``None``
    for a single experience, which has no earlier one)."""
    C, tags = _checked(curve, training)
    T = C.shape[1]
    lows = []
    for k in range(T - 1):
        after = C[tags > k, k]
        if after.size == 0:
            raise RetainError(f"no evaluation after experience {k} was learned")
        lows.append(after.min())
    return float(np.mean(lows)) if lows else None


def wc_acc(curve, training: Sequence[int]) -> float:
    """Worst-case accuracy at the end of the stream: the last experience's final accuracy,
    weighted 1/T, and min-ACC, weighted 1 - 1/T."""
    C, tags = _checked(curve, training)
    T = C.shape[1]
    last = C[np.flatnonzero(tags == T - 1)[-1], T - 1] if (tags == T - 1).any() else None
    if last is None:
        raise RetainError("the curve has no evaluation of the last experience")
    low = min_acc(C, tags)
    return float(last) if low is None else float(last / T + (1 - 1 / T) * low)
