"""The world a learner trains in: one process, or the ranks of a ``torch.distributed`` group.

Why a small object and not calls to ``torch.distributed`` in every strategy: in one process
each method below returns its input (no collective, no copy), so the hot path of a plain run
is the plain loop; under ``torchrun`` the same calls become the few collectives the math of a
strategy needs to stay identical on every rank (docs/distributed.md gives each design):

- :meth:`World.wrap` puts the model in ``DistributedDataParallel`` (gradients averaged in the
  backward pass);
- :meth:`World.share` places a rank's memory draws in one global draw from a shared seed, so
  replicated memories sample exactly as one process sampling the global batch's rows;
- :meth:`World.gather` hands every rank all ranks' insertion candidates, in rank order;
- :meth:`World.mean` reduces per-rank estimates (Fisher, MAS, A-GEM's reference gradient)
  weighted by the rows each rank used;
- :meth:`World.agree` refuses ranks that disagree on hyper-parameters or data.

>>> world = World()  # one process
>>> world.size, world.rank, world.share(8, fixed=True)
(1, 0, None)
>>> t = [torch.ones(2)]
>>> world.mean(t, 3) is t and world.gather({"x": t[0]})["x"] is t[0]
True
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Iterator, Mapping
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from retain.errors import RetainError


class World:
    """One process: every collective is the identity."""

    size = 1
    rank = 0
    #: incoming rows of each rank in the current step (set by the learner; distributed only)
    counts: tuple[int, ...] = ()

    @property
    def main(self) -> bool:
        """True on the rank that writes files (checkpoints, reports, tables)."""
        return self.rank == 0

    def wrap(self, model: nn.Module) -> nn.Module:
        """The module the learner's training forward pass calls."""
        return model

    def loss_scale(self) -> float | None:
        """Factor making this rank's mean loss count by its rows in the global mean when the
        step's rows are uneven over ranks (``None``: no scaling needed)."""
        return None

    def share(self, k: int, fixed: bool) -> tuple[int, int] | None:
        """``(offset, total)`` of this rank's ``k`` draws inside one global draw, or ``None``
        in one process. ``fixed``: every rank draws ``k`` (a set memory batch size); else ``k``
        is this rank's incoming row count (memory rows follow the batch)."""
        return None

    def gather(self, rows: Mapping[str, torch.Tensor],
               counts: tuple[int, ...] | None = None) -> Mapping[str, torch.Tensor]:
        """Every rank's rows, concatenated in rank order: ``counts`` rows of each rank
        (default: the step's incoming rows, :attr:`counts`)."""
        return rows

    def mean(self, tensors: list[torch.Tensor], count: int) -> list[torch.Tensor]:
        """The mean over all ranks of per-rank means, each weighted by its ``count`` rows."""
        return tensors

    def any(self, mask: torch.Tensor) -> torch.Tensor:
        """Elementwise OR of a boolean mask over ranks."""
        return mask

    def shard(self, batches: Iterable[tuple]) -> Shard:
        """This rank's contiguous part of each ``(x, y, task)`` batch (consolidation passes:
        each rank estimates on its part, then :meth:`mean` weighs the parts by ``rows``)."""
        return Shard(batches, self.size, self.rank)

    def agree(self, what: Mapping[str, Any]) -> None:
        """Raise unless every rank passes the same ``what`` (hyper-parameters, data sizes)."""

    def sync_generator(self, generator: torch.Generator) -> None:
        """Give every rank rank 0's generator state (shuffles stay identical)."""

    def broadcast(self, value: Any) -> Any:
        """Rank 0's ``value`` (any picklable object) on every rank."""
        return value

    def barrier(self) -> None:
        """Wait for every rank."""


class ProcessGroup(World):
    """The ranks of the default ``torch.distributed`` process group (gloo on CPU, NCCL on GPU)."""

    def __init__(self) -> None:
        self.size = dist.get_world_size()
        self.rank = dist.get_rank()
        self.counts = ()
        self._device = torch.device("cuda", torch.cuda.current_device()) \
            if dist.get_backend() == "nccl" else torch.device("cpu")

    def wrap(self, model: nn.Module) -> nn.Module:
        first = next(model.parameters(), None)
        if first is None:
            raise RetainError("a model without parameters has nothing to train distributed")
        ids = [first.device.index] if first.device.type == "cuda" else None
        # broadcasts rank 0's weights and buffers: every rank starts from the same model
        return nn.parallel.DistributedDataParallel(model, device_ids=ids)

    def loss_scale(self) -> float | None:
        mine, total = self.counts[self.rank], sum(self.counts)
        return None if mine * self.size == total else self.size * mine / total

    def share(self, k: int, fixed: bool) -> tuple[int, int]:
        if fixed:
            return self.rank * k, self.size * k
        return sum(self.counts[: self.rank]), sum(self.counts)

    def gather(self, rows: Mapping[str, torch.Tensor],
               counts: tuple[int, ...] | None = None) -> dict[str, torch.Tensor]:
        counts = self.counts if counts is None else counts
        # every field's rows as bytes side by side: one all-gather per step, whatever the
        # fields and dtypes (rows padded to the largest rank's count)
        fields = {name: value.detach() for name, value in rows.items()}
        raw = [v.reshape(v.shape[0], math.prod(v.shape[1:])).contiguous().view(torch.uint8)
               for v in fields.values()]
        packed = torch.zeros((max(counts), sum(r.shape[1] for r in raw)), dtype=torch.uint8,
                             device=self._device)
        if raw[0].shape[0]:
            packed[: raw[0].shape[0]] = self._on(torch.cat(raw, dim=1))
        parts = [torch.empty_like(packed) for _ in range(self.size)]
        dist.all_gather(parts, packed)
        every = torch.cat([p[:c] for p, c in zip(parts, counts, strict=True)])
        out, start = {}, 0
        for (name, value), width in zip(fields.items(), (r.shape[1] for r in raw), strict=True):
            column = every[:, start : start + width].contiguous().view(value.dtype)
            out[name] = column.reshape(-1, *value.shape[1:]).to(value.device)
            start += width
        return out

    def mean(self, tensors: list[torch.Tensor], count: int) -> list[torch.Tensor]:
        flat = torch.cat([t.detach().reshape(-1) * count for t in tensors]
                         + [torch.tensor([float(count)], dtype=tensors[0].dtype,
                                         device=tensors[0].device)])
        flat = self._on(flat)
        dist.all_reduce(flat)
        total = float(flat[-1])
        if total == 0:
            raise RetainError("no rank had rows to estimate from")
        flat = (flat[:-1] / total).to(tensors[0].device)
        return [part.view_as(t) for part, t in
                zip(flat.split([t.numel() for t in tensors]), tensors, strict=True)]

    def any(self, mask: torch.Tensor) -> torch.Tensor:
        summed = self._on(mask.to(torch.int32))
        dist.all_reduce(summed, op=dist.ReduceOp.MAX)
        return summed.to(mask.device).bool()

    def agree(self, what: Mapping[str, Any]) -> None:
        mine = json.loads(json.dumps(what, default=repr, sort_keys=True))
        every: list[Any] = [None] * self.size
        dist.all_gather_object(every, mine)
        for rank, theirs in enumerate(every):
            if theirs != every[0]:
                keys = sorted(k for k in {*theirs, *every[0]}
                              if theirs.get(k) != every[0].get(k))
                shown = "; ".join(f"{k}: rank 0 has {every[0].get(k)!r}, rank {rank} has "
                                  f"{theirs.get(k)!r}" for k in keys)
                raise RetainError(f"the ranks disagree ({shown}); start every rank with the "
                                  "same command and data")

    def sync_generator(self, generator: torch.Generator) -> None:
        state = [generator.get_state()]
        dist.broadcast_object_list(state, src=0)
        generator.set_state(state[0])

    def broadcast(self, value: Any) -> Any:
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        dist.barrier()

    def _on(self, t: torch.Tensor) -> torch.Tensor:
        return t if t.device == self._device else t.to(self._device)


class Shard:
    """Iterates over one rank's part of each batch and counts the rows it yielded."""

    def __init__(self, batches: Iterable[tuple], size: int, rank: int):
        self.batches, self.size, self.rank = batches, size, rank
        self.rows = 0

    def __iter__(self) -> Iterator[tuple]:
        for x, y, task in self.batches:
            if self.size > 1:
                lo, hi = _chunk(x.shape[0], self.size, self.rank)
                if hi == lo:
                    continue
                x, y, task = x[lo:hi], y[lo:hi], None if task is None else task[lo:hi]
            self.rows += x.shape[0]
            yield x, y, task


def _chunk(n: int, size: int, rank: int) -> tuple[int, int]:
    """Rows ``[lo, hi)`` of rank ``rank`` when ``n`` rows are cut into ``size`` contiguous
    parts whose sizes differ by at most one (the first ranks take the extra rows)."""
    base, extra = divmod(n, size)
    lo = rank * base + min(rank, extra)
    return lo, lo + base + (rank < extra)


def chunk_counts(n: int, size: int) -> tuple[int, ...]:
    """Rows of each rank when ``n`` rows are cut as :func:`_chunk` cuts them.

    >>> chunk_counts(9, 2), chunk_counts(1, 2)
    ((5, 4), (1, 0))
    """
    base, extra = divmod(n, size)
    return tuple(base + (r < extra) for r in range(size))


def rank_batches(tensors: tuple[torch.Tensor, ...], batch_size: int,
                 generator: torch.Generator, shuffle: bool, world: World
                 ) -> Iterator[tuple[torch.Tensor, ...]]:
    """This rank's part of each global batch of ``world.size * batch_size`` rows of one shared
    shuffled order (``world.counts`` tells every rank's part). The last global batch is cut as
    evenly as it goes; one with fewer rows than ranks joins the batch before it, so that every
    rank has rows in every step: no row is dropped or repeated, no rank waits.

    One permutation copy per pass, then views, as :func:`retain.data.iterate` does.

    >>> class Rank1(World): size, rank = 2, 1
    >>> [len(x) for x, in rank_batches((torch.arange(17),), 4, None, False, Rank1())]
    [4, 4]
    """
    n = tensors[0].shape[0]
    if shuffle:
        perm = torch.randperm(n, generator=generator).to(tensors[0].device)
        tensors = tuple(t.index_select(0, perm) for t in tensors)
    for start, m in global_steps(n, batch_size * world.size, world.size):
        world.counts = chunk_counts(m, world.size)
        lo, hi = _chunk(m, world.size, world.rank)
        yield tuple(t[start + lo : start + hi] for t in tensors)


def rank_indices(n: int, batch_size: int, generator: torch.Generator, shuffle: bool,
                 world: World) -> Iterator[tuple[list[int], tuple[int, ...]]]:
    """The same cut as :func:`rank_batches` as dataset indices (``DistributedSampler``
    semantics for datasets that are not in-memory tensors): ``(indices, counts)`` per step."""
    order = (torch.randperm(n, generator=generator) if shuffle else torch.arange(n)).tolist()
    for start, m in global_steps(n, batch_size * world.size, world.size):
        lo, hi = _chunk(m, world.size, world.rank)
        yield order[start + lo : start + hi], chunk_counts(m, world.size)


def global_steps(n: int, step: int, size: int) -> list[tuple[int, int]]:
    """``(start, rows)`` of each global batch of ``n`` rows: ``step`` rows each, the rest in
    the last; a rest smaller than ``size`` (some rank would get no row) joins the batch before.

    >>> global_steps(17, 8, 2), global_steps(19, 8, 2)
    ([(0, 8), (8, 9)], [(0, 8), (8, 8), (16, 3)])
    """
    steps = [(start, min(step, n - start)) for start in range(0, n, step)]
    if len(steps) > 1 and steps[-1][1] < size:
        (start, m), (_, rest) = steps[-2], steps[-1]
        steps[-2:] = [(start, m + rest)]
    return steps


def current() -> World:
    """The world of this process: the default process group when one is initialised with more
    than one rank, else a single process."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        return ProcessGroup()
    return World()


def launched() -> bool:
    """True when ``torchrun`` (or another launcher) started this process as one of several."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init(backend: str | None = None, timeout_s: float = 300.0) -> World:
    """Join the process group ``torchrun`` set up (``env://``): NCCL when CUDA is there, else
    gloo; each rank uses GPU ``LOCAL_RANK``. A no-op outside a launcher."""
    if not launched():
        return World()
    if not dist.is_initialized():
        if backend is None:
            backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend, timeout=timedelta(seconds=timeout_s))
    return current()


def close() -> None:
    """Leave the process group (a no-op when none was joined)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
