"""Update regressions: which samples a model update broke, and which it fixed.

Accuracy can stay level while an update trades samples the old model got right for others:
users see the broken ones. The measures are those of Renate (awslabs), after Yan et al.
(CVPR 2021, "Positive-Congruent Training"):

- **negative flip rate** (NFR): share of samples the old model got right and the new one
  gets wrong;
- **positive flip rate** (PFR): share the old model got wrong and the new one gets right;
- **negative flip impact** (NFI): negative flips over the new model's errors (how many of
  its mistakes are new ones); 0 when the new model makes none.

For regression, a row "flips negatively" when its error grew by more than ``tolerance``
and positively when it fell by more than ``tolerance``; NFI is not defined (``None``).

>>> import torch
>>> old = torch.tensor([True, True, False, False])
>>> new = torch.tensor([True, False, True, False])
>>> flip_rates(old, new)
Flips(negative_flip_rate=0.25, positive_flip_rate=0.25, negative_flip_impact=0.5, rows=4)
>>> flip_rates(torch.tensor([0.1, 0.5]), torch.tensor([0.2, 0.1]), tolerance=0.05)
Flips(negative_flip_rate=0.5, positive_flip_rate=0.5, negative_flip_impact=None, rows=2)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from retain.errors import RetainError


@dataclass(frozen=True)
class Flips:
    """The flip rates of one model update on one set of samples."""

    negative_flip_rate: float
    positive_flip_rate: float
    negative_flip_impact: float | None
    rows: int

    def to_dict(self) -> dict[str, float | int | None]:
        return asdict(self)


def flip_rates(old: torch.Tensor, new: torch.Tensor, tolerance: float = 0.0) -> Flips:
    """Flip rates from per-sample scores of the old and the new model on the same samples.

    ``old`` and ``new`` are boolean (sample classified correctly) or floating point (the
    sample's error, for regression; ``tolerance`` then sets how much it may move).
    """
    if old.shape != new.shape or old.dim() != 1:
        raise RetainError(f"flip rates need two 1-d score vectors of the same length, got "
                          f"shapes {tuple(old.shape)} and {tuple(new.shape)}")
    if old.shape[0] == 0:
        raise RetainError("flip rates need at least one sample")
    if (old.dtype == torch.bool) != (new.dtype == torch.bool):
        raise RetainError("old and new scores must both be correctness (bool) or both errors")
    if tolerance < 0:
        raise RetainError(f"tolerance must be >= 0, got {tolerance}")
    n = old.shape[0]
    if old.dtype == torch.bool:
        negative = int((old & ~new).sum())
        positive = int((~old & new).sum())
        errors = int((~new).sum())
        impact = negative / errors if errors else 0.0
        return Flips(negative / n, positive / n, impact, n)
    change = new.double() - old.double()
    if not bool(torch.isfinite(change).all()):
        raise RetainError("per-sample errors contain NaN or inf")
    negative = int((change > tolerance).sum())
    positive = int((change < -tolerance).sum())
    return Flips(negative / n, positive / n, None, n)
