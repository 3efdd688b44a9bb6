"""Fixed-capacity replay memories held in preallocated tensors.

Insertion and sampling cost O(1) per sample whatever the stream length: the slots are decided on
the host with a NumPy generator (no device syncs), then rows are written with one indexed copy
per field. The rows a step replays are drawn with a torch generator: a NumPy call inside the
update step costs tens of microseconds there (its code is cold after the step's kernels;
docs/performance.md), a torch draw goes through the dispatcher the step keeps warm. Fields
(``x``, ``y``, ``task``, ``logits``, ...) are allocated on the first insertion, so any sample
shape works.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import torch

from retain.catalog import Catalog
from retain.errors import RetainError


class ReplayBuffer:
    """Reservoir sampling (Vitter's algorithm R): every sample seen so far is kept with equal
    probability ``capacity / seen``, without knowing the stream length in advance."""

    policy = "reservoir"
    #: the slot decisions read the rows' labels (class-balanced); else only their count
    needs_labels = False

    def __init__(self, capacity: int, device: torch.device | str | None = None, seed: int = 0):
        if not isinstance(capacity, int) or capacity <= 0:
            raise RetainError(f"replay capacity must be a positive integer, got {capacity!r}")
        self.capacity = capacity
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.fields: dict[str, torch.Tensor] = {}
        self.size = 0
        self.seen = 0
        self.rng = np.random.default_rng(seed)
        # replay draws; ``None`` in a memory restored from a state saved before draws had
        # their own generator: it goes on drawing from ``rng``, so it resumes as it would have
        self.draws: torch.Generator | None = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return self.size

    # -- insertion -------------------------------------------------------------------------
    def new_experience(self) -> None:
        """An experience boundary. Reservoir and class-balanced memories ignore it; an
        experience-balanced one gives the new experience its share."""

    def add(self, **rows: torch.Tensor) -> None:
        """Offer a batch of rows (one tensor per field, same first dimension) to the memory."""
        n = next(iter(rows.values())).shape[0]
        if not self.fields:
            self._allocate(rows)
        elif rows.keys() != self.fields.keys():
            raise RetainError(
                f"buffer holds fields {sorted(self.fields)}, got {sorted(rows)}"
            )
        source, slots = self._choose_slots(rows, n)
        if source is None:  # contiguous fill of free slots: plain slice copies
            for name, value in rows.items():
                self.fields[name][slots : slots + n].copy_(value.detach())
            return
        if len(source) == 0:
            return
        src = torch.from_numpy(source).to(self.device)
        dst = torch.from_numpy(slots).to(self.device)
        for name, value in rows.items():
            self.fields[name].index_copy_(0, dst, value.detach().index_select(0, src))

    def add_from_ranks(self, rows: dict[str, torch.Tensor], world: Any) -> None:
        """:meth:`add` of every rank's incoming rows (``world.counts`` of them, in rank order)
        on every rank of a distributed run, gathering only the rows the memory keeps.

        The slot decisions need only the global row count (and the labels, for a
        class-balanced memory), so every rank makes the same ones from the shared seed
        first; then each rank contributes just its rows among those kept. Once the memory is
        full that is a few rows a step, and a step that keeps none sends nothing."""
        counts = world.counts
        if not self.fields:
            self._allocate(rows)
        elif rows.keys() != self.fields.keys():
            raise RetainError(f"buffer holds fields {sorted(self.fields)}, got {sorted(rows)}")
        labels = world.gather({"y": rows["y"]}) if self.needs_labels else rows
        source, slots = self._choose_slots(labels, sum(counts))
        if source is None:  # a contiguous fill keeps every row of every rank
            for name, value in world.gather(rows).items():
                self.fields[name][slots : slots + value.shape[0]].copy_(value)
            return
        if len(source) == 0:
            return
        order = np.argsort(source, kind="stable")  # rank order is global position order
        source, slots = source[order], slots[order]
        bounds = np.cumsum((0, *counts))
        kept = np.diff(np.searchsorted(source, bounds))  # rows each rank contributes
        lo, hi = bounds[world.rank], bounds[world.rank + 1]
        mine = torch.from_numpy(source[(source >= lo) & (source < hi)] - lo).to(self.device)
        part = {name: value.detach().index_select(0, mine.to(value.device))
                for name, value in rows.items()}
        dst = torch.from_numpy(slots).to(self.device)
        for name, value in world.gather(part, tuple(int(k) for k in kept)).items():
            self.fields[name].index_copy_(0, dst, value.to(self.device))

    def _choose_slots(self, rows: dict[str, torch.Tensor], n: int):
        """Return ``(None, start)`` for a contiguous fill, else ``(source_rows, slots)``."""
        start = self.seen
        self.seen += n
        if start + n <= self.capacity:
            self.size = start + n
            return None, start
        positions = np.arange(start, start + n)
        drawn = (self.rng.random(n) * (positions + 1)).astype(np.int64)
        slots = np.where(positions < self.capacity, positions, drawn)
        keep = slots < self.capacity
        self.size = min(self.capacity, self.seen)
        return _last_writes(np.nonzero(keep)[0], slots[keep])

    def _allocate(self, rows: dict[str, torch.Tensor]) -> None:
        for name, value in rows.items():
            self.fields[name] = torch.empty(
                (self.capacity, *value.shape[1:]), dtype=value.dtype, device=self.device
            )

    # -- sampling --------------------------------------------------------------------------
    def sample_indices(self, k: int, replace: bool = True,
                       share: tuple[int, int] | None = None) -> torch.Tensor:
        """``k`` slots drawn uniformly from the filled part; ``replace=False`` draws
        ``min(k, len(self))`` distinct slots instead (a random subset of the memory).

        ``share=(offset, total)`` (distributed runs, :meth:`retain.distributed.World.share`):
        draw ``total`` slots and keep ``[offset, offset + k)``, so that replicated memories
        with one seed stay in step and together draw as one process draws ``total``."""
        if share is not None:
            offset, total = share
            return self.sample_indices(total, replace)[offset : offset + k]
        if self.size == 0:
            raise RetainError("cannot sample from an empty replay buffer")
        if replace and self.draws is not None:
            return torch.randint(0, self.size, (k,), generator=self.draws).to(self.device)
        if replace:
            drawn = self.rng.integers(0, self.size, k)
        else:
            drawn = self.rng.choice(self.size, min(k, self.size), replace=False)
        return torch.from_numpy(drawn).to(self.device)

    def sample(self, k: int, fields: tuple[str, ...] | None = None, replace: bool = True,
               share: tuple[int, int] | None = None) -> dict[str, torch.Tensor]:
        """A batch of ``k`` stored rows, one tensor per field (see :meth:`sample_indices`)."""
        idx = self.sample_indices(k, replace, share)
        names = fields if fields is not None else tuple(self.fields)
        return {name: self.fields[name].index_select(0, idx) for name in names}

    def contents(self) -> dict[str, torch.Tensor]:
        """Views of the filled part of every field."""
        return {name: value[: self.size] for name, value in self.fields.items()}

    # -- state -----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "capacity": self.capacity,
            "size": self.size,
            "seen": self.seen,
            "rng": self.rng.bit_generator.state,
            **({} if self.draws is None else {"draws": _encode(self.draws.get_state())}),
            "fields": {name: value[: self.size].clone() for name, value in self.fields.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("policy", self.policy) != self.policy:
            raise RetainError(
                f"buffer policy differs: checkpoint has {state['policy']!r}, "
                f"this buffer is {self.policy!r}"
            )
        if state["capacity"] != self.capacity:
            raise RetainError(
                f"buffer capacity differs: checkpoint has {state['capacity']}, "
                f"this buffer has {self.capacity}"
            )
        self.size, self.seen = int(state["size"]), int(state["seen"])
        self.rng.bit_generator.state = state["rng"]
        if "draws" not in state:
            self.draws = None
        else:
            self.draws = self.draws or torch.Generator()
            self.draws.set_state(_decode(state["draws"]))
        self.fields = {}
        if state["fields"]:
            self._allocate(state["fields"])
            for name, value in state["fields"].items():
                self.fields[name][: self.size].copy_(value)

    def to(self, device: torch.device | str) -> ReplayBuffer:
        self.device = torch.device(device)
        self.fields = {name: value.to(self.device) for name, value in self.fields.items()}
        return self


class ClassBalancedBuffer(ReplayBuffer):
    """Class-balanced reservoir sampling (CBRS, Chrysakis & Moens, ICML 2020).

    While full, a sample of a class that is not among the largest in memory replaces a random
    sample of a largest class; a sample of a largest class replaces a random sample of its own
    class with probability ``stored_c / seen_c``. Memory stays balanced even when the stream is
    not. Needs labels on the host (one device-to-host copy of ``y`` per insertion).
    """

    policy = "class-balanced"
    needs_labels = True

    def __init__(self, capacity: int, device: torch.device | str | None = None, seed: int = 0):
        super().__init__(capacity, device, seed)
        self.class_seen: dict[int, int] = {}
        self.class_slots: dict[int, list[int]] = {}

    def _choose_slots(self, rows: dict[str, torch.Tensor], n: int):
        if "y" not in rows:
            raise RetainError("a class-balanced buffer needs a 'y' field with class labels")
        labels = rows["y"].detach().cpu().numpy().astype(np.int64)
        writes: dict[int, int] = {}
        seen, slots_of, rng = self.class_seen, self.class_slots, self.rng
        size, capacity = self.size, self.capacity
        # the size of the largest classes, kept as rows move (not a max over classes per row)
        largest = max(map(len, slots_of.values()), default=0)
        for row, label in enumerate(labels.tolist()):
            seen_c = seen[label] = seen.get(label, 0) + 1
            own = slots_of.get(label)
            if own is None:
                own = slots_of[label] = []
            if size < capacity:
                slot = size
                size += 1
                own.append(slot)
                largest = max(largest, len(own))
            elif len(own) < largest:
                victims = [c for c, s in slots_of.items() if len(s) == largest]
                slot = _pop_random(slots_of[victims[int(rng.integers(len(victims)))]], rng)
                own.append(slot)
                if len(victims) == 1 and len(own) < largest:  # the one largest class shrank
                    largest -= 1
            elif rng.random() < len(own) / seen_c:
                slot = own[int(rng.integers(len(own)))]
            else:
                continue
            writes[slot] = row
        self.size = size
        self.seen += len(labels)
        slots = np.fromiter(writes.keys(), dtype=np.int64, count=len(writes))
        source = np.fromiter(writes.values(), dtype=np.int64, count=len(writes))
        return source, slots

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["class_seen"] = {str(c): n for c, n in self.class_seen.items()}
        state["class_slots"] = {str(c): list(s) for c, s in self.class_slots.items()}
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.class_seen = {int(c): int(n) for c, n in state["class_seen"].items()}
        # slot order matters for exact resume: random victims are picked by list position
        self.class_slots = {int(c): [int(i) for i in s] for c, s in state["class_slots"].items()}


class ExperienceBalancedBuffer(ReplayBuffer):
    """An equal share of the memory per experience (the policy of Avalanche's default
    ``ExperienceBalancedBuffer``), each share a uniform random sample of its experience.

    :meth:`new_experience` opens a share: with ``k`` experiences each holds
    ``capacity // k`` rows (the newest ones one more, until the remainder is used), so
    every earlier share shrinks to a uniform random subset of itself, and the rows of the
    current experience are kept by reservoir sampling within its share. With more
    experiences than ``capacity``, the newest ``capacity`` experiences keep one row each
    (a sliding window; Avalanche gives the remainder to the oldest, which would stop
    storing new experiences in a long daily stream). Why: a plain
    reservoir gives each experience a share proportional to its size and, as the stream
    grows, less and less to the latest ones; a balanced memory keeps every experience
    equally represented (worth 1.7 points of accuracy on Avalanche's replay benchmark,
    docs/benchmarks.md). Rows added before the first boundary form the first experience.
    Filled slots stay contiguous (a shrink moves tail rows into the freed slots), so
    sampling is the reservoir's: uniform over the memory.
    """

    policy = "experience-balanced"

    def __init__(self, capacity: int, device: torch.device | str | None = None, seed: int = 0):
        super().__init__(capacity, device, seed)
        self.share_slots: list[list[int]] = []  # slots of each experience's rows
        self.share_seen: list[int] = []  # rows each experience offered

    def shares(self) -> list[int]:
        """How many rows each experience may hold now (oldest first)."""
        k = len(self.share_slots)
        base, extra = divmod(self.capacity, k) if k else (0, 0)
        return [base + (i >= k - extra) for i in range(k)]  # the remainder to the newest

    def new_experience(self) -> None:
        self.share_slots.append([])
        self.share_seen.append(0)
        freed = []
        for slots, share in zip(self.share_slots, self.shares(), strict=True):
            if len(slots) > share:
                freed += _pop_randoms(slots, len(slots) - share, self.rng)
        if freed:
            self._compact(freed)

    def _compact(self, freed: list[int]) -> None:
        """Move the rows above the new size into the freed slots below it."""
        size = self.size - len(freed)
        freed_set = set(freed)
        holes = sorted(s for s in freed if s < size)
        movers = [s for s in range(size, self.size) if s not in freed_set]
        self.size = size
        if not holes:
            return
        dst = torch.tensor(holes, device=self.device)
        src = torch.tensor(movers, device=self.device)
        for value in self.fields.values():
            value.index_copy_(0, dst, value.index_select(0, src))
        moved = dict(zip(movers, holes, strict=True))
        for slots in self.share_slots:
            slots[:] = [moved.get(s, s) for s in slots]

    def _choose_slots(self, rows: dict[str, torch.Tensor], n: int):
        if not self.share_slots:
            self.new_experience()
        own, share = self.share_slots[-1], self.shares()[-1]
        start = self.share_seen[-1]
        self.share_seen[-1] += n
        self.seen += n
        fill = max(0, min(n, share - len(own)))
        first_free = self.size
        own.extend(range(first_free, first_free + fill))
        self.size += fill
        if fill == n:
            return None, first_free
        positions = np.arange(start + fill, start + n)
        drawn = (self.rng.random(n - fill) * (positions + 1)).astype(np.int64)
        keep = drawn < share
        source = np.concatenate((np.arange(fill), fill + np.nonzero(keep)[0]))
        slots = np.concatenate((np.arange(first_free, first_free + fill),
                                np.asarray(own, dtype=np.int64)[drawn[keep]]))
        return _last_writes(source, slots)

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["share_slots"] = [list(s) for s in self.share_slots]
        state["share_seen"] = list(self.share_seen)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        # slot order matters for exact resume: shrinking picks victims by list position
        self.share_slots = [[int(i) for i in s] for s in state["share_slots"]]
        self.share_seen = [int(n) for n in state["share_seen"]]


def _encode(generator_state: torch.Tensor) -> str:
    """A torch generator's state as text: host state, saved with the NumPy generator's in the
    manifest, not as a tensor that would follow the memory to its device."""
    return base64.b64encode(generator_state.numpy().tobytes()).decode("ascii")


def _decode(text: str) -> torch.Tensor:
    return torch.frombuffer(bytearray(base64.b64decode(text)), dtype=torch.uint8)


def _last_writes(source: np.ndarray, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keep, for each slot, the last row that drew it: later rows overwrite earlier ones, as
    if the rows were inserted one at a time."""
    _, last = np.unique(slots[::-1], return_index=True)
    chosen = len(slots) - 1 - last
    return source[chosen], slots[chosen]


def _pop_random(slots: list[int], rng: np.random.Generator) -> int:
    """Remove and return a random element in O(1) (swap with the last)."""
    i = int(rng.integers(len(slots)))
    slots[i], slots[-1] = slots[-1], slots[i]
    return slots.pop()


def _pop_randoms(slots: list[int], count: int, rng: np.random.Generator) -> list[int]:
    """:func:`_pop_random` ``count`` times, its draws made in one NumPy call: the same numbers
    (a NumPy generator draws an array of bounds as it draws them one by one), without a call
    per row (a shrinking share frees hundreds of slots per experience).

    >>> a, b = [0, 1, 2, 3, 4], [0, 1, 2, 3, 4]
    >>> one = np.random.default_rng(0)
    >>> _pop_randoms(a, 3, np.random.default_rng(0)) == [_pop_random(b, one) for _ in range(3)]
    True
    >>> a == b
    True
    """
    popped = []
    for i in rng.integers(np.arange(len(slots), len(slots) - count, -1)).tolist():
        slots[i], slots[-1] = slots[-1], slots[i]
        popped.append(slots.pop())
    return popped


#: buffer policies by name (``Replay(policy=...)``, ``make_buffer``)
BUFFERS: Catalog = Catalog("buffer policy", {
    "reservoir": ReplayBuffer, "class-balanced": ClassBalancedBuffer,
    "experience-balanced": ExperienceBalancedBuffer}, group="retain.buffers")


def make_buffer(
    policy: str, capacity: int, device: torch.device | str | None = None, seed: int = 0
) -> ReplayBuffer:
    """Build a buffer by policy name (``reservoir``, ``class-balanced`` or
    ``experience-balanced``)."""
    return BUFFERS.require(policy)(capacity, device, seed)
