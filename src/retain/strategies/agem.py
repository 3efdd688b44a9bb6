"""Averaged Gradient Episodic Memory (Chaudhry et al., ICLR 2019)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from retain.buffers import ReplayBuffer
from retain.strategies.base import Batch, Strategy
from retain.strategies.common import trainable_parameters

if TYPE_CHECKING:
    from retain.scenarios import Experience
    from retain.strategies.contract import LearnerView


def project(grads: list[torch.Tensor], reference: list[torch.Tensor]) -> None:
    """A-GEM's projection, in place on ``grads``: ``g ← g − min(g·r, 0) / (r·r) · r``.

    Afterwards ``g·r ≥ 0``: the step cannot increase the loss on the memory to first order.
    Branch-free (a clamp instead of an ``if``), so it needs no device-to-host sync.
    ``reference`` is left unchanged.
    """
    r = torch.cat([t.flatten() for t in reference])
    dot = torch.dot(torch.cat([g.flatten() for g in grads]), r)
    norm = torch.dot(r, r)
    coef = dot.clamp(max=0.0) / norm.clamp(min=torch.finfo(norm.dtype).tiny)
    torch._foreach_sub_(grads, torch._foreach_mul(reference, coef))


class AGEM(Strategy):
    """Never let a step increase the average loss on an episodic memory of past experiences.

    Each step computes a reference gradient ``r`` on ``sample_size`` rows drawn from the memory;
    when the new gradient ``g`` points against it (``g·r < 0``) it is projected onto the
    half-space ``g·r ≥ 0``. After each experience, ``per_experience`` random samples of it
    (default: ``capacity``) are offered to a reservoir memory, so the memory stays uniform
    over the experiences seen without knowing their number. Setting
    ``per_experience = capacity // number of experiences`` gives the paper's fixed slots per
    task (the memory then fills up only at the last experience).

    The projection is branch-free, so a step never waits for the device: it always computes
    ``r·r``, the clamped coefficient and the update (6 aten ops after the flattened dot
    product), where a loop with ``if g·r < 0`` syncs to the host (2 ops) and projects only
    when the branch fires (about 5 + 2 ops per parameter). That is about 4 ops per step more
    than such a loop when it skips the projection and fewer when it projects: the price of
    no sync, bounded in ``tests/test_overhead.py``.

    Args:
        capacity: number of samples in the episodic memory.
        sample_size: memory rows per reference gradient.
        per_experience: samples of each experience offered to the memory.
        replace: draw the reference batch with replacement (default). ``False`` draws
            ``min(sample_size, memory size)`` distinct rows, as mammoth does: while the memory
            is smaller than ``sample_size`` the reference is then the exact memory gradient.
        seed: seed of the memory's sampling.

    Example (one experience of random data; ``s`` is the strategy):

    >>> import torch
    >>> from torch import nn
    >>> from torch.utils.data import TensorDataset
    >>> from retain import Learner
    >>> _ = torch.manual_seed(0)
    >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    >>> s = AGEM(capacity=20)
    >>> learner = Learner(model, torch.optim.SGD(model.parameters(), lr=0.1), strategies=[s])
    >>> data = TensorDataset(torch.randn(32, 4), torch.randint(0, 3, (32,)))
    >>> _ = learner.learn(data, batch_size=8)
    >>> len(s.memory)
    20
    """

    name = "agem"
    # the memory is filled from the whole experience every rank holds (identical); the
    # reference gradient is averaged over the ranks' shares of one memory draw
    distributed = True

    def __init__(self, capacity: int = 500, sample_size: int = 256,
                 per_experience: int | None = None, replace: bool = True, seed: int = 0):
        super().__init__()
        self.replace = bool(replace)
        self.sample_size = sample_size
        self.per_experience = per_experience
        self.add_state("memory", ReplayBuffer(capacity, seed=seed))
        self._params: list[torch.Tensor] = []

    def bind(self, learner: LearnerView) -> None:
        super().bind(learner)
        self._params = trainable_parameters(learner.model)

    def reference_gradient(self, learner: LearnerView) -> list[torch.Tensor]:
        """Gradient of the learner's loss on a batch drawn from the memory."""
        k = self.sample_size
        mem = self.memory.sample(k, replace=self.replace,
                                 share=learner.world.share(k, fixed=True))
        rows = mem["x"].shape[0]
        if rows == 0:  # this rank's share of a small distinct draw is empty
            return learner.world.mean([torch.zeros_like(p) for p in self._params], 0)
        out = learner.model(mem["x"])
        if learner.output_map is not None:
            out = learner.output_map(out, mem.get("task"))
        loss = learner.loss_fn(out, mem["y"])
        grads = torch.autograd.grad(loss, self._params, allow_unused=True,
                                    materialize_grads=True)
        return learner.world.mean(list(grads), rows)  # before the projection

    def after_backward(self, learner: LearnerView, batch: Batch) -> None:
        if self.memory.size == 0:
            return
        reference = self.reference_gradient(learner)
        grads = []
        for p in self._params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            grads.append(p.grad)
        project(grads, reference)

    def after_experience(self, learner: LearnerView, experience: Experience) -> None:
        offered = self.per_experience or self.memory.capacity
        for x, y, task in learner.batches(experience.train, offered, limit=offered):
            rows = {"x": x, "y": y} if task is None else {"x": x, "y": y, "task": task}
            self.memory.add(**rows)
