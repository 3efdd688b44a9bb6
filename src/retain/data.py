"""Turning datasets into tensors and mini-batches without per-sample Python work."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset

Tensors = tuple[torch.Tensor, ...]


class LazyTensorDataset(Dataset):
    """A tensor dataset whose tensors are computed on demand (e.g. a permuted copy of MNIST),
    so a 20-task stream does not hold 20 transformed copies in memory at once."""

    def __init__(self, build: Callable[[], Tensors], length: int):
        self._build = build
        self._length = length

    @property
    def tensors(self) -> Tensors:
        return self._build()

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, i):
        return tuple(t[i] for t in self.tensors)


def as_tensors(dataset: Dataset) -> Tensors | None:
    """The dataset's columns as whole tensors when it is tensor-backed, else ``None``."""
    if isinstance(dataset, TensorDataset | LazyTensorDataset):
        return tuple(dataset.tensors)
    if isinstance(dataset, Subset):
        inner = as_tensors(dataset.dataset)
        if inner is not None:
            idx = torch.as_tensor(dataset.indices, dtype=torch.long)
            return tuple(t[idx] for t in inner)
    return None


def is_tensor_backed(dataset: Dataset) -> bool:
    """True when :func:`as_tensors` gives the whole dataset, decided by type alone: building
    the tensors of a subset or a lazy (permuted, rotated) dataset costs a full copy."""
    if isinstance(dataset, TensorDataset | LazyTensorDataset):
        return True
    return isinstance(dataset, Subset) and is_tensor_backed(dataset.dataset)


def materialize(dataset: Dataset, batch_size: int = 1024) -> Tensors:
    """All samples of any map-style dataset as stacked tensors (one pass)."""
    tensors = as_tensors(dataset)
    if tensors is not None:
        return tensors
    columns: list[list[torch.Tensor]] = []
    for batch in DataLoader(dataset, batch_size=batch_size):
        batch = batch if isinstance(batch, list | tuple) else [batch]
        if not columns:
            columns = [[] for _ in batch]
        for col, value in zip(columns, batch, strict=True):
            col.append(torch.as_tensor(value))
    return tuple(torch.cat(col) for col in columns)


def labels_of(dataset: Dataset) -> torch.Tensor:
    """The label column (second element of every sample)."""
    return materialize(dataset)[1]


def iterate(
    tensors: Tensors, batch_size: int, generator: torch.Generator | None, shuffle: bool = True,
    rows: bool = False,
) -> Iterator[tuple]:
    """Mini-batches of in-memory tensors: views in order, or each shuffled batch gathered on
    its own from one permutation. Gathering batch by batch moves the same bytes as one
    permuted copy of the whole pass, into a small block that the allocator reuses while it is
    still in cache; a whole-pass copy is a fresh allocation as large as the data, paid in page
    faults and cold writes (18 ms more CPU a pass of 12,000 x 784 floats, docs/performance.md).

    ``rows=True`` ends each tuple with the batch's positions in ``tensors`` (a ``slice`` in
    order, the permutation's slice when shuffled), so per-row work can be looked up.

    >>> [part for *_, part in iterate((torch.arange(5),), 2, None, shuffle=False, rows=True)]
    [slice(0, 2, None), slice(2, 4, None), slice(4, 6, None)]
    """
    n = tensors[0].shape[0]
    if not shuffle:
        for start in range(0, n, batch_size):
            part = slice(start, start + batch_size)
            batch = [t[part] for t in tensors]
            yield (*batch, part) if rows else tuple(batch)
        return
    perm = torch.randperm(n, generator=generator).to(tensors[0].device)
    for start in range(0, n, batch_size):
        part = perm[start : start + batch_size]
        batch = [t.index_select(0, part) for t in tensors]  # a list: no generator to resume
        yield (*batch, part) if rows else tuple(batch)
