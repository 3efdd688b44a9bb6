"""How sure a forecast run's gain is: a paired bootstrap over its forecast days.

A gain of one approach over another is measured on one run's days; a second year of data
would give another figure. Resampling whole days (both approaches' errors on a day go
together, since a hard day is hard for both) gives an interval for the gain, and says
whether the run resolves it at all: 39 fresh-retrain days rarely do.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> theirs = rng.uniform(1, 2, 300)
>>> low, high = gain_interval(0.9 * theirs, theirs)
>>> round(low, 3), round(high, 3)  # a 10% gain on every day: the interval is that gain
(0.1, 0.1)
"""

from __future__ import annotations

import numpy as np
from scipy.stats import bootstrap

#: resamples of every interval: enough for the 2.5% and 97.5% percentiles to settle to a
#: tenth of a point on a year of days, in milliseconds
RESAMPLES = 4000


def gain_interval(mine: np.ndarray, theirs: np.ndarray, level: float = 0.95,
                  resamples: int = RESAMPLES, seed: int = 0) -> tuple[float, float]:
    """The ``level`` interval of the gain ``1 - mean(mine) / mean(theirs)`` (each a day's
    MAE), with whole days resampled together; ``(nan, nan)`` for fewer than two days."""
    mine, theirs = np.asarray(mine, float), np.asarray(theirs, float)
    if mine.shape != theirs.shape or mine.ndim != 1:
        raise ValueError(f"need two equal 1-d arrays of daily errors, got {mine.shape} and "
                         f"{theirs.shape}")
    if len(mine) < 2:
        return float("nan"), float("nan")

    def gain(x, y, axis=-1):
        return 1 - x.mean(axis=axis) / y.mean(axis=axis)

    ci = bootstrap((mine, theirs), gain, paired=True, vectorized=True,
                   n_resamples=resamples, confidence_level=level, method="percentile",
                   random_state=np.random.default_rng(seed)).confidence_interval
    return float(ci.low), float(ci.high)
