"""The gate of an update: promote the candidate only if it kept what the current version
knew and learned the new data better than a model that learned nothing."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.utils.data import TensorDataset

from retain.errors import RetainError
from retain.evaluation import StreamEvaluator
from retain.learner import Learner
from retain.store.tables import Schema


def gate(before: dict[str, float | None], after: dict[str, float | None],
         tolerance: float, chance: float | None = None) -> tuple[bool, str]:
    """``(promote, reason)``: promote unless an error rose by more than ``tolerance``, or the
    candidate predicts the holdout no better than ``chance`` (a model that learned nothing):
    then the new data itself looks wrong, even if learning it did little harm.

    >>> gate({"holdout_error": 0.2, "memory_error": 0.1},
    ...      {"holdout_error": 0.15, "memory_error": 0.2}, tolerance=0.02)
    (False, 'replay memory error rose 0.1000 -> 0.2000 (tolerance 0.02)')
    """
    failed, passed = [], []
    if chance is not None and not after["holdout_error"] < chance:
        failed.append(f"holdout error {after['holdout_error']:.4f} is no better than chance "
                      f"({chance:.4f}): shuffled, constant or unrelated labels?")
    for key, what in (("holdout_error", "holdout"), ("memory_error", "replay memory")):
        old, new = before.get(key), after.get(key)
        if old is None or new is None:
            continue
        if new <= old + tolerance:  # NaN fails
            passed.append(f"{what} error {old:.4f} -> {new:.4f}")
        else:
            failed.append(f"{what} error rose {old:.4f} -> {new:.4f} (tolerance {tolerance:g})")
    return (False, "; ".join(failed)) if failed else (True, "; ".join(passed))


def chance_error(schema: Schema, train: TensorDataset, holdout: TensorDataset) -> float:
    """The error of a model that learned nothing but the level of the new data: uniform
    guessing over the classes, or always predicting the mean target of the rows learned."""
    if schema.task == "classification":
        return 1.0 - 1.0 / schema.n_outputs
    y = holdout.tensors[1].double()
    return float((y - train.tensors[1].double().mean()).pow(2).mean())


def gate_settings(holdout_window: int, min_holdout: int, significance: float
                  ) -> dict[str, int | float]:
    """The small-file gate's settings, checked before a store is made.

    >>> gate_settings(0, 20, 0.05)
    Traceback (most recent call last):
    ...
    retain.errors.RetainError: holdout_window must be an integer >= 1 (updates), got 0
    """
    if int(holdout_window) != holdout_window or holdout_window < 1:
        raise RetainError(f"holdout_window must be an integer >= 1 (updates), got "
                          f"{holdout_window}")
    if int(min_holdout) != min_holdout or min_holdout < 1:
        raise RetainError(f"min_holdout must be an integer >= 1 (rows), got {min_holdout}")
    if not 0 < significance < 1:
        raise RetainError(f"significance must be between 0 and 1, got {significance}")
    return {"holdout_window": int(holdout_window), "min_holdout": int(min_holdout),
            "significance": float(significance)}


# -- the gate on per-row errors, with their uncertainty ----------------------------------------
@dataclass(frozen=True)
class Check:
    """One criterion of the gate: ``verdict`` is passed, failed or "cannot judge"."""

    verdict: str
    text: str


def row_errors(learner: Learner, data: TensorDataset | None) -> torch.Tensor | None:
    """One error per row (0/1 for a class, squared error of standardised targets)."""
    if data is None or len(data) == 0:
        return None
    scores = StreamEvaluator(learner, [data]).scores().double().cpu()
    return 1.0 - scores if learner.task_type == "classification" else scores


def rise_check(what: str, before: torch.Tensor | None, after: torch.Tensor | None,
               tolerance: float, significance: float, min_rows: int) -> Check | None:
    """Fail when the error on the same rows rose by more than ``tolerance`` beyond doubt:
    a one-sided paired t-test of the mean rise against ``tolerance`` at level
    ``significance``. Fewer than ``min_rows`` rows cannot be judged.

    >>> before = torch.tensor([0.1, 0.2, 0.1, 0.3] * 5)
    >>> rise_check("holdout", before, before + 0.2, 0.02, 0.05, 20).verdict
    'failed'
    >>> rise_check("holdout", before, before + torch.tensor([0.5, -0.4] * 10), 0.02, 0.05,
    ...            20).text
    'holdout error 0.1750 -> 0.2250 (a rise within noise, p=0.39)'
    >>> rise_check("holdout", before[:5], before[:5] + 1, 0.02, 0.05, 20).text
    'holdout: 5 rows, too few to judge (at least 20)'
    """
    if before is None or after is None:
        return None
    n = len(before)
    if n < min_rows:
        return Check("cannot judge", f"{what}: {n} rows, too few to judge (at least {min_rows})")
    old, new = float(before.mean()), float(after.mean())
    if not math.isfinite(new):
        return Check("failed", f"{what} error is {new}")
    p = _p_above(after - before, tolerance)
    if new <= old + tolerance:
        return Check("passed", f"{what} error {old:.4f} -> {new:.4f}")
    if p < significance:
        return Check("failed", f"{what} error rose {old:.4f} -> {new:.4f} (tolerance "
                               f"{tolerance:g}, p={p:.2g})")
    return Check("passed", f"{what} error {old:.4f} -> {new:.4f} (a rise within noise, "
                           f"p={p:.2g})")


def labels_check(today: torch.Tensor | None, today_chance: torch.Tensor | None,
                 reference: float, reference_chance: float, candidate: float,
                 candidate_chance: float, significance: float, min_rows: int) -> Check | None:
    """Whether the day's labels look wrong: the current version, which beats chance on
    recent rows by a margin (``reference`` against ``reference_chance``: its relative
    advantage), predicts the day's rows (``today``, per row, against ``today_chance``) with
    less than half that advantage beyond doubt, and the candidate, which learned them, still
    does no better on the day's held-out rows. A real change of the data passes: the
    candidate learns it."""
    if today is None or today_chance is None or len(today) < min_rows or reference_chance <= 0:
        return None
    advantage = 1.0 - reference / reference_chance
    if advantage <= 0:
        return None  # the current version is no better than chance anywhere: no yardstick
    bar = 1.0 - advantage / 2
    p = _p_above(today - bar * today_chance, 0.0)
    now = 1.0 - float(today.mean()) / max(float(today_chance.mean()), 1e-12)
    if p < significance and candidate >= bar * candidate_chance:
        how = "no" if now <= 0 else "little"
        return Check("failed", f"the day's labels look wrong: the current version predicts "
                               f"them {how} better than chance (error {float(today.mean()):.4f}"
                               f", chance {float(today_chance.mean()):.4f}; on recent rows "
                               f"{reference:.4f} against {reference_chance:.4f}, p={p:.2g}) "
                               "and learning them did not help: shuffled, constant or "
                               "unrelated labels?")
    return Check("passed", "")  # the reason names the sets' errors; the day's are in metrics


def decide(checks: list[Check | None]) -> tuple[bool | None, str]:
    """``(promote, reason)``; ``promote`` is ``None`` when no criterion could be judged."""
    checks = [c for c in checks if c is not None]
    failed = [c.text for c in checks if c.verdict == "failed"]
    if failed:
        return False, "; ".join(failed)
    if not any(c.verdict == "passed" for c in checks):
        return None, "cannot judge: " + "; ".join(c.text for c in checks)
    return True, "; ".join(c.text for c in checks if c.text)


def _p_above(diff: torch.Tensor, margin: float) -> float:
    """One-sided p-value of a paired t-test that the mean of ``diff`` exceeds ``margin``."""
    from scipy.stats import t as student

    n = len(diff)
    mean = float(diff.mean())
    sd = float(diff.std()) if n > 1 else 0.0
    if sd == 0.0 or not math.isfinite(sd):
        return 0.0 if mean > margin else 1.0
    return float(student.sf((mean - margin) / (sd / math.sqrt(n)), n - 1))
