"""GDumb: greedy class-balanced memory, retrained from scratch (Prabhu et al., ECCV 2020)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from retain.data import iterate
from retain.strategies.base import Strategy

if TYPE_CHECKING:
    from retain.scenarios import Experience
    from retain.strategies.contract import LearnerView


def greedy_balanced(labels: list[int], stored: list[int], capacity: int,
                    rng: np.random.Generator) -> list[tuple[int, int]]:
    """GDumb's sampler over a stream of labels, given the labels already ``stored``.

    A sample is stored while there is room; once full, a sample of a class holding fewer than
    ``capacity / classes seen`` slots evicts a random sample of the largest class. Returns
    ``(stream position, slot)`` decisions in order; ``stored`` is updated in place.
    """
    decisions: list[tuple[int, int]] = []
    slots: dict[int, list[int]] = {}
    for slot, label in enumerate(stored):
        slots.setdefault(label, []).append(slot)
    for position, label in enumerate(labels):
        own = slots.setdefault(label, [])
        if len(stored) < capacity:
            own.append(len(stored))
            stored.append(label)
            decisions.append((position, own[-1]))
        elif len(own) < capacity / len(slots):
            largest = max(slots.values(), key=len)
            slot = largest.pop(int(rng.integers(len(largest))))
            own.append(slot)
            stored[slot] = label
            decisions.append((position, slot))
    return decisions


class GDumb(Strategy):
    """Keep a class-balanced memory and, after each experience, retrain the model from its
    initial weights on that memory alone.

    GDumb is the sanity check of continual learning: it ignores what training on the stream
    taught the model. The memory is filled greedily in stream order when the experience ends
    (no per-step work); retraining uses the learner's optimizer with its state cleared.

    Args:
        capacity: number of samples in memory.
        epochs: retraining epochs on the memory after each experience.
        batch_size: retraining mini-batch size.
        seed: seed of the eviction choices.

    Example (one experience of random data; ``s`` is the strategy):

    >>> import torch
    >>> from torch import nn
    >>> from torch.utils.data import TensorDataset
    >>> from retain import Learner
    >>> _ = torch.manual_seed(0)
    >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    >>> s = GDumb(capacity=20, epochs=1)
    >>> learner = Learner(model, torch.optim.SGD(model.parameters(), lr=0.1), strategies=[s])
    >>> data = TensorDataset(torch.randn(32, 4), torch.randint(0, 3, (32,)))
    >>> _ = learner.learn(data, batch_size=8)
    >>> len(s.memory["y"])
    20
    """

    name = "gdumb"
    # every rank holds the whole experience: the same memory, the same retraining (redundant
    # work, identical results; docs/distributed.md)
    distributed = True

    def __init__(self, capacity: int = 500, epochs: int = 30, batch_size: int = 16,
                 seed: int = 0):
        super().__init__(capacity=capacity, epochs=epochs, batch_size=batch_size, seed=seed)
        self.capacity = capacity
        self.epochs = epochs
        self.batch_size = batch_size
        # learned state (saved, restored, moved to the learner's device)
        self.add_state("memory", {})  # x, y (and task) of the stored samples
        self.add_state("initial", {})  # the model's weights when first bound ({} until then)
        self.add_state("rng", np.random.default_rng(seed))

    def bind(self, learner: LearnerView) -> None:
        if not self.initial:
            self.initial = {k: v.detach().clone() for k, v in learner.model.state_dict().items()}
        super().bind(learner)

    def after_experience(self, learner: LearnerView, experience: Experience) -> None:
        self.store(learner, experience)
        self.retrain(learner)

    def store(self, learner: LearnerView, experience: Experience) -> None:
        """Offer the experience's samples, in a random stream order, to the memory."""
        x, y, task = next(learner.batches(experience.train, batch_size=len(experience.train),
                                          shuffle=True))
        rows = {"x": x, "y": y} if task is None else {"x": x, "y": y, "task": task}
        stored = self.memory["y"].tolist() if self.memory else []
        decisions = greedy_balanced(y.tolist(), stored, self.capacity, self.rng)
        if not decisions:
            return
        final = {slot: position for position, slot in decisions}  # a slot's last write wins
        slots = torch.tensor(list(final), device=x.device)
        positions = torch.tensor(list(final.values()), device=x.device)
        if not self.memory:
            self.memory = {k: v.new_empty((0, *v.shape[1:])) for k, v in rows.items()}
        size = len(stored)
        for name, value in rows.items():
            grown = torch.cat((self.memory[name],
                               value.new_empty((size - self.memory[name].shape[0],
                                                *value.shape[1:]))))
            grown[slots] = value[positions]
            self.memory[name] = grown

    def retrain(self, learner: LearnerView) -> None:
        """Reset the model to its initial weights and train it on the memory only."""
        model, optimizer = learner.model, learner.optimizer
        model.load_state_dict(self.initial)
        optimizer.state.clear()
        model.train()
        tensors = tuple(self.memory[k] for k in ("x", "y", "task") if k in self.memory)
        for _ in range(self.epochs):
            for x, y, *task in iterate(tensors, self.batch_size, learner.generator):
                out = model(x)
                if learner.output_map is not None:
                    out = learner.output_map(out, task[0] if task else None)
                loss = learner.loss_fn(out, y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
