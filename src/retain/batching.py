"""How a learner's data reaches its device: an experience's tensors, then mini-batches.

A tensor-backed dataset is batched in memory (one permutation per pass, each batch gathered);
any other dataset goes through a ``DataLoader``, with ``DistributedSampler`` semantics when
several ranks train together. Rows of a task-labelled experience whose samples carry no task
label get the experience's task appended, the same way on every path.

>>> from torch.utils.data import TensorDataset
>>> from retain.scenarios.experience import Experience

if TYPE_CHECKING:
    from retain.strategies.contract import DriverView
>>> data = TensorDataset(torch.randn(5, 3), torch.tensor([0, 1, 0, 1, 1]))
>>> x, y, task = experience_tensors(Experience(data, task_label=2), torch.device("cpu"))
>>> task.tolist()
[2, 2, 2, 2, 2]
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

import torch
from torch.utils.data import DataLoader, Dataset

from retain.data import Tensors, as_tensors, is_tensor_backed, iterate
from retain.distributed import World, rank_batches, rank_indices
from retain.errors import RetainError
from retain.scenarios.experience import Experience

if TYPE_CHECKING:
    from retain.strategies.contract import DriverView


def task_tensor(task: torch.Tensor | int | None, n: int,
                device: torch.device) -> torch.Tensor | None:
    """``n`` task labels on ``device``: ``task`` repeated when it is one number."""
    if task is None:
        return None
    if isinstance(task, int):
        return torch.full((n,), task, dtype=torch.long, device=device)
    return task.to(device)


def experience_tensors(experience: Experience, device: torch.device) -> Tensors:
    """``(x, y[, task])`` of an experience's training set on ``device`` (the first batch of a
    dataset that is not tensor-backed: enough to check it and note its classes)."""
    tensors = as_tensors(experience.train)
    if tensors is None:  # a generic Dataset: validate on its first batch only
        first = next(iter(DataLoader(experience.train, batch_size=256)), None)
        if first is None:
            raise RetainError(f"{experience.name} is empty: nothing to learn")
        tensors = tuple(first) if isinstance(first, list | tuple) else (first,)
    if len(tensors) < 2:
        raise RetainError("every sample must be an (input, label) pair")
    tensors = tuple(t.to(device, non_blocking=True) for t in tensors[:3])
    if len(tensors) == 2 and experience.task_label is not None:
        tensors = (*tensors, task_tensor(experience.task_label, tensors[0].shape[0], device))
    return tensors


def training_batches(dataset: Dataset, tensors: Tensors, batch_size: int, shuffle: bool,
                     generator: torch.Generator, device: torch.device,
                     world: World | None) -> Iterable[tuple]:
    """The mini-batches of one epoch; ``tensors`` are :func:`experience_tensors`' (all of a
    tensor-backed dataset: no second copy). ``world``: this rank's share of each batch. Each
    tuple ends with the batch's positions in ``tensors`` (:func:`retain.data.iterate`), or
    ``None`` where batches are not gathered from them (a ``DataLoader``, several ranks)."""
    if is_tensor_backed(dataset):
        if world is not None:
            return ((*part, None) for part in rank_batches(tensors, batch_size, generator,
                                                           shuffle, world))
        return iterate(tensors, batch_size, generator, shuffle, rows=True)
    task = tensors[2][:1] if len(tensors) == 3 else None
    pin = device.type == "cuda"
    if world is None:
        loader = DataLoader(dataset, batch_size=batch_size, shuffle=shuffle,
                            generator=generator, pin_memory=pin)
        return _on_device(loader, task, device)
    plan = list(rank_indices(len(dataset), batch_size, generator, shuffle, world))
    loader = DataLoader(dataset, batch_sampler=[idx for idx, _ in plan], pin_memory=pin)
    return _on_device(loader, task, device, world, [counts for _, counts in plan])


def _on_device(loader: DataLoader, task: torch.Tensor | None, device: torch.device,
               world: World | None = None,
               counts: list[tuple[int, ...]] | None = None) -> Iterator[tuple]:
    """A loader's batches on ``device``, the experience's task appended where rows lack one;
    with ``counts``, ``world.counts`` is each step's rows per rank."""
    for i, batch in enumerate(loader):
        batch = [b.to(device, non_blocking=True) for b in batch[:3]]
        if len(batch) == 2 and task is not None:
            batch.append(task.expand(batch[0].shape[0]))
        if counts is not None:
            world.counts = counts[i]
        yield (*batch, None)


def consolidation_batches(tensors: Tensors, batch_size: int, limit: int | None, shuffle: bool,
                          generator: torch.Generator
                          ) -> Iterator[tuple[torch.Tensor, torch.Tensor,
                                              torch.Tensor | None]]:
    """``(x, y, task_or_None)`` batches for a strategy's consolidation work (Fisher,
    importance, herding); ``limit`` keeps a random subset of that many rows."""
    if limit is not None and limit < tensors[0].shape[0]:
        idx = torch.randperm(tensors[0].shape[0], generator=generator)[:limit]
        tensors = tuple(t.index_select(0, idx.to(tensors[0].device)) for t in tensors)
    for part in iterate(tensors, batch_size, generator, shuffle):
        yield part[0], part[1], part[2] if len(part) > 2 else None


# -- the learner's methods for strategies (retain.Learner names them) -------------------------
def dataset_tensors(learner: DriverView, dataset: Dataset, task: int | None = None) -> Tensors:
    """``(x, y[, task])`` of a dataset on the learner's device (the first batch of a dataset
    that is not tensor-backed)."""
    return experience_tensors(Experience(dataset, task_label=task), learner.device)


def dataset_batches(learner: DriverView, dataset: Dataset, batch_size: int = 1024,
                    limit: int | None = None, shuffle: bool = False
                    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]]:
    """``(x, y, task_or_None)`` mini-batches of a dataset on the learner's device, for
    consolidation work (Fisher, importance, herding). ``limit`` takes a random subset."""
    return consolidation_batches(learner.experience_tensors(dataset), batch_size, limit,
                                 shuffle, learner.generator)
