"""A stream with one experience per group of a per-sample key (machine type, site, sensor).

Why: real data arrives tagged with where it came from, and "a new machine type" is then
exactly "a new value of that column". ``split_by`` turns such a column into a stream
without the user writing index bookkeeping, as domain-incremental (same labels in every
experience) or class-incremental (each ``(group, label)`` pair is its own class).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, TensorDataset

from retain.data import materialize
from retain.datasets.files import from_arrays, split_indices
from retain.errors import RetainError
from retain.scenarios.experience import Experience, Stream

LABELS = ("fault", "pair")
_RECORD_COLUMNS = ("machine", "machine_ids", "labels")


def _rows(mask: np.ndarray, limit: int = 10) -> str:
    rows = np.flatnonzero(mask).tolist()
    shown = ", ".join(map(str, rows[:limit]))
    return shown + (f", ... ({len(rows) - limit} more)" if len(rows) > limit else "")


def _frame_parts(frame: Any, key: Any, label_col: str, what: str):
    """``(x, y, key values)`` of a DataFrame: every numeric column but key and label is x."""
    columns = [str(c) for c in frame.columns]
    frame = frame.set_axis(columns, axis=1)
    for role, col in (("label", label_col), ("key", key)):
        if not isinstance(col, str) or col not in columns:
            raise RetainError(f"{what}: no {role} column {col!r}; columns are: "
                              f"{', '.join(map(repr, columns))}")
    features = [c for c in columns if c not in (key, label_col)]
    data = from_arrays(frame[features].to_numpy(), frame[label_col].to_numpy())
    return (*data.tensors, frame[key].to_numpy())


def _parts(dataset: Any, key: Any, label_col: str, what: str):
    """``(x, y, key values)`` of any supported dataset, key resolved to one value per row."""
    if type(dataset).__name__ == "DataFrame":
        return _frame_parts(dataset, key, label_col, what)
    # vibration records (retain.vibration.VibrationRecords), known by their columns so that
    # the core does not import an application
    if hasattr(dataset, "signals") and all(hasattr(dataset, c) for c in _RECORD_COLUMNS):
        x, y = torch.from_numpy(dataset.signals), torch.from_numpy(dataset.labels)
        if isinstance(key, str):
            if key not in _RECORD_COLUMNS:
                raise RetainError(f"{what}: vibration records have no column {key!r}; "
                                  f"columns are: {', '.join(map(repr, _RECORD_COLUMNS))}")
            return x, y, getattr(dataset, key)
        return x, y, key
    if not isinstance(dataset, Dataset):
        raise RetainError(f"{what}: expected a torch Dataset, pandas DataFrame or "
                          f"VibrationRecords, got {type(dataset).__name__}")
    tensors = materialize(dataset)
    if len(tensors) < 2:
        raise RetainError(f"{what}: every sample must be an (input, label, ...) tuple")
    if isinstance(key, str):
        raise RetainError(f"{what}: a {type(dataset).__name__} has no named columns; pass a "
                          f"column index (2..{len(tensors) - 1}) or one key value per sample")
    if isinstance(key, int | np.integer) and not isinstance(key, bool):
        shapes = ", ".join(f"{i}: {list(t.shape)}" for i, t in enumerate(tensors))
        if not 0 <= int(key) < len(tensors) or tensors[int(key)].dim() != 1:
            raise RetainError(f"{what}: column {key} is not a per-sample key; the dataset's "
                              f"columns are {shapes}")
        key = tensors[int(key)]
    return tensors[0], tensors[1], key


def _key_values(values: Any, n: int, what: str) -> np.ndarray:
    """One hashable group id per row; NaN/None ids are refused with their rows."""
    keys = values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(
        values)
    if keys.ndim != 1 or len(keys) != n:
        raise RetainError(f"{what}: the key must hold one value per sample ({n}), got shape "
                          f"{keys.shape}")
    missing = (np.isnan(keys) if keys.dtype.kind == "f"
               else np.array([v is None or v != v for v in keys]) if keys.dtype.kind == "O"
               else np.zeros(n, dtype=bool))
    if missing.any():
        raise RetainError(f"{what}: missing key values (NaN/None) in rows {_rows(missing)}; "
                          "drop those rows or fill the key")
    return keys.astype(str) if keys.dtype.kind in "OU" else keys


def _check_inputs(x: torch.Tensor, what: str) -> None:
    if x.is_floating_point():
        bad = ~torch.isfinite(x).reshape(x.shape[0], -1).all(1)
        if bool(bad.any()):
            raise RetainError(f"{what}: NaN/inf inputs in rows {_rows(bad.numpy())}; drop or "
                              "interpolate them")


def _group_order(keys: np.ndarray, order: Sequence[Any] | None) -> list[Any]:
    """Groups by first appearance, or as given (every present group must be listed)."""
    _, first = np.unique(keys, return_index=True)
    present = [keys[i].item() if hasattr(keys[i], "item") else keys[i] for i in sorted(first)]
    if order is None:
        return present
    wanted = [type(present[0])(g) for g in order]
    if len(set(wanted)) != len(wanted):
        raise RetainError(f"order lists a group twice: {list(order)}")
    empty = [g for g in wanted if g not in set(present)]
    if empty:
        raise RetainError(f"groups {empty} in order have no samples; groups present: {present}")
    unlisted = [g for g in present if g not in set(wanted)]
    if unlisted:
        raise RetainError(f"order misses groups {unlisted} present in the data; filter the data "
                          "first to leave them out")
    return wanted


def split_by(
    dataset: Any,
    key: Any,
    test: Any = None,
    *,
    test_key: Any = None,
    label: str = "fault",
    order: Sequence[Any] | None = None,
    label_col: str = "label",
    test_fraction: float = 0.25,
    seed: int = 0,
) -> Stream:
    """One experience per value of ``key``, in order of first appearance (or ``order``).

    ``dataset`` is a ``TensorDataset`` (``key`` = index of a column such as the machine id,
    or one value per sample), a pandas ``DataFrame`` (``key`` = column name; every other
    numeric column but ``label_col`` is an input feature) or
    :class:`~retain.vibration.VibrationRecords` (``key="machine"``).
    ``test`` is split by the same column (``test_key`` when ``key`` holds values); without
    it each group is split ``test_fraction`` for testing, stratified by label, with ``seed``.

    ``label="fault"`` keeps the labels (domain-incremental); ``label="pair"`` makes each
    ``(group, label)`` pair a class of its own, numbered in stream order (class-incremental;
    ``stream.info["pairs"]`` maps class ids back).
    """
    if label not in LABELS:
        raise RetainError(f"label must be one of {LABELS}, got {label!r}")
    x, y, raw = _parts(dataset, key, label_col, "dataset")
    if x.shape[0] == 0:
        raise RetainError("the dataset is empty: nothing to split")
    if label == "pair" and y.is_floating_point():
        raise RetainError("label='pair' needs class labels (integers or names), got real values")
    keys = _key_values(raw, x.shape[0], "dataset")
    _check_inputs(x, "dataset")
    groups = _group_order(keys, order)
    if test is None:
        if test_key is not None:
            raise RetainError("test_key needs a test set")
        (x, y, keys), (test_x, test_y, test_keys) = _split_groups(
            x, y, keys, groups, test_fraction, seed)
    else:
        if test_key is None and not isinstance(key, str | int | np.integer):
            raise RetainError("key holds values for the training rows only; pass test_key=... "
                              "with the test rows' values, or use a column as key")
        test_x, test_y, raw_test = _parts(test, key if test_key is None else test_key,
                                          label_col, "test")
        test_keys = _key_values(raw_test, test_x.shape[0], "test")
        _check_inputs(test_x, "test")
        unknown = sorted(set(test_keys.tolist()) - set(keys.tolist()), key=str)
        if unknown:
            raise RetainError(f"test has groups {unknown} that the training data lacks; "
                              f"training groups: {groups}")
    if label == "pair":
        pairs, y, test_y = _pair_labels(groups, keys, y, test_keys, test_y)
    experiences = []
    for i, g in enumerate(groups):
        train_part, test_part = keys == g, test_keys == g
        if not test_part.any():
            raise RetainError(f"group {g!r} has no test samples; give more data for it")
        ys = y[torch.from_numpy(train_part)]
        experiences.append(Experience(
            TensorDataset(x[torch.from_numpy(train_part)], ys),
            TensorDataset(test_x[torch.from_numpy(test_part)], test_y[torch.from_numpy(test_part)]),
            index=i, classes=tuple(torch.unique(ys).tolist()),
            name=f"{key}={g}" if isinstance(key, str) else str(g)))
    n_classes = None if y.is_floating_point() else int(max(y.max(), test_y.max())) + 1
    info = {"key": _name(key), "groups": groups, "label": label}
    if label == "pair":
        info["pairs"] = pairs
    kind = "domain" if label == "fault" else "class"
    return Stream(experiences, name=f"split by {_name(key)} ({kind}-incremental)",
                  n_classes=n_classes, info=info)


def _split_groups(x, y, keys, groups, test_fraction: float, seed: int):
    """Train and test rows, each group split on its own, stratified by label."""
    train_rows, test_rows = [], []
    for g in groups:
        rows = np.flatnonzero(keys == g)
        a, b = split_indices(y[rows], test_fraction, seed, f"group {g!r}")
        train_rows.append(rows[a])
        test_rows.append(rows[b])
    return [(x[r], y[r], keys[r]) for r in map(np.concatenate, (train_rows, test_rows))]


def _name(key: Any) -> str:
    return key if isinstance(key, str) else f"column {key}" if isinstance(key, int) else "group"


def _pair_labels(groups, keys, y, test_keys, test_y):
    """Number ``(group, label)`` pairs in stream order; test pairs must occur in training."""
    pairs: list[tuple[Any, int]] = []
    for g in groups:
        pairs += [(g, int(c)) for c in torch.unique(y[torch.from_numpy(keys == g)]).tolist()]
    index = {p: i for i, p in enumerate(pairs)}

    def relabel(ks: np.ndarray, ys: torch.Tensor, what: str) -> torch.Tensor:
        found = [(k.item() if hasattr(k, "item") else k, int(c))
                 for k, c in zip(ks, ys.tolist(), strict=True)]
        unknown = sorted({p for p in found if p not in index}, key=str)
        if unknown:
            raise RetainError(f"{what} has (group, label) pairs that training lacks: {unknown}")
        return torch.tensor([index[p] for p in found], dtype=torch.long)

    return pairs, relabel(keys, y, "training"), relabel(test_keys, test_y, "test")
