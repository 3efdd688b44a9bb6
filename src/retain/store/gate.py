"""The gate of an update: promote the candidate only if it kept what the current version
knew and learned the new data better than a model that learned nothing."""

from __future__ import annotations

from torch.utils.data import TensorDataset

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
