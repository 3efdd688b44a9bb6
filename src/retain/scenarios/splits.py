"""Streams made by splitting datasets: by class groups, by a key, or given explicitly."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.utils.data import Dataset, TensorDataset

from retain.data import materialize
from retain.errors import RetainError
from retain.scenarios.experience import Experience, Stream


def _class_groups(
    labels: torch.Tensor, n_experiences: int, class_order: Sequence[int] | None,
    shuffle_classes: bool, seed: int,
) -> list[tuple[int, ...]]:
    present = torch.unique(labels).tolist()
    if class_order is not None:
        order = [int(c) for c in class_order]
        missing = sorted(set(present) - set(order))
        if missing:
            raise RetainError(f"class_order misses classes {missing} present in the data")
    elif shuffle_classes:
        g = torch.Generator().manual_seed(seed)
        order = [present[i] for i in torch.randperm(len(present), generator=g).tolist()]
    else:
        order = present
    if not 1 <= n_experiences <= len(order):
        raise RetainError(
            f"cannot split {len(order)} classes into {n_experiences} experiences"
        )
    chunks = torch.tensor_split(torch.tensor(order), n_experiences)
    return [tuple(int(c) for c in chunk) for chunk in chunks]


def _select(tensors: tuple[torch.Tensor, ...], classes: tuple[int, ...],
            task: int | None) -> TensorDataset:
    x, y = tensors[0], tensors[1]
    mask = torch.isin(y, torch.tensor(classes, dtype=y.dtype))
    parts = [x[mask], y[mask]]
    if task is not None:
        parts.append(torch.full((int(mask.sum()),), task, dtype=torch.long))
    return TensorDataset(*parts)


def class_incremental(
    train: Dataset, test: Dataset, n_experiences: int = 5, seed: int = 0,
    class_order: Sequence[int] | None = None, shuffle_classes: bool = False,
) -> Stream:
    """Each experience brings new classes; one output head over all classes, no task labels.

    Classes are split in sorted order (0-1, 2-3, ... for 5 experiences of MNIST) unless
    ``class_order`` is given or ``shuffle_classes`` asks for a ``seed``-ed random order.
    """
    return _split_classes(train, test, n_experiences, seed, class_order, shuffle_classes,
                          task_incremental=False)


def task_incremental(
    train: Dataset, test: Dataset, n_experiences: int = 5, seed: int = 0,
    class_order: Sequence[int] | None = None, shuffle_classes: bool = False,
) -> Stream:
    """Like :func:`class_incremental`, but every sample carries its task label and the learner
    restricts the output to that task's classes (multi-head by masking)."""
    return _split_classes(train, test, n_experiences, seed, class_order, shuffle_classes,
                          task_incremental=True)


def _split_classes(train, test, n_experiences, seed, class_order, shuffle_classes,
                   task_incremental: bool) -> Stream:
    train_t, test_t = materialize(train), materialize(test)
    groups = _class_groups(train_t[1], n_experiences, class_order, shuffle_classes, seed)
    experiences = []
    for i, classes in enumerate(groups):
        task = i if task_incremental else None
        experiences.append(Experience(
            _select(train_t, classes, task), _select(test_t, classes, task), index=i,
            task_label=task, classes=classes, name=f"classes {list(classes)}",
        ))
    n_classes = int(max(train_t[1].max(), test_t[1].max())) + 1
    kind = "task-incremental" if task_incremental else "class-incremental"
    return Stream(experiences, name=kind, n_classes=n_classes,
                  task_classes=groups if task_incremental else None)


def from_datasets(
    pairs: Sequence[tuple[Dataset, Dataset]], task_labels: bool = False, name: str = "custom",
) -> Stream:
    """A stream from explicit ``(train, test)`` pairs, one experience each (domain-incremental
    when they share labels). With ``task_labels`` every sample gets its experience index."""
    if not pairs:
        raise RetainError("from_datasets needs at least one (train, test) pair")
    experiences = []
    for i, pair in enumerate(pairs):
        if not isinstance(pair, tuple | list) or len(pair) != 2:
            raise RetainError(f"item {i} of from_datasets must be a (train, test) pair")
        train, test = pair
        if task_labels:
            train, test = (_with_task(materialize(d), i) for d in (train, test))
        experiences.append(Experience(train, test, index=i, task_label=i if task_labels else None))
    return Stream(experiences, name=name)


def _with_task(tensors: tuple[torch.Tensor, ...], task: int) -> TensorDataset:
    x, y = tensors[0], tensors[1]
    return TensorDataset(x, y, torch.full((x.shape[0],), task, dtype=torch.long))
