"""Fixed-capacity replay memories held in preallocated tensors.

Insertion and sampling cost O(1) per sample whatever the stream length: the slots are decided on
the host with a NumPy generator (no device syncs), then rows are written with one indexed copy
per field. Fields (``x``, ``y``, ``task``, ``logits``, ...) are allocated on the first insertion,
so any sample shape works.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from retain.errors import RetainError


class ReplayBuffer:
    """Reservoir sampling (Vitter's algorithm R): every sample seen so far is kept with equal
    probability ``capacity / seen``, without knowing the stream length in advance."""

    policy = "reservoir"

    def __init__(self, capacity: int, device: torch.device | str | None = None, seed: int = 0):
        if not isinstance(capacity, int) or capacity <= 0:
            raise RetainError(f"replay capacity must be a positive integer, got {capacity!r}")
        self.capacity = capacity
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.fields: dict[str, torch.Tensor] = {}
        self.size = 0
        self.seen = 0
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.size

    # -- insertion -------------------------------------------------------------------------
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
        source, slots = np.nonzero(keep)[0], slots[keep]
        # later rows overwrite earlier ones that drew the same slot (sequential semantics)
        _, last = np.unique(slots[::-1], return_index=True)
        chosen = len(slots) - 1 - last
        return source[chosen], slots[chosen]

    def _allocate(self, rows: dict[str, torch.Tensor]) -> None:
        for name, value in rows.items():
            self.fields[name] = torch.empty(
                (self.capacity, *value.shape[1:]), dtype=value.dtype, device=self.device
            )

    # -- sampling --------------------------------------------------------------------------
    def sample_indices(self, k: int) -> torch.Tensor:
        """``k`` slots drawn uniformly (with replacement) from the filled part."""
        if self.size == 0:
            raise RetainError("cannot sample from an empty replay buffer")
        return torch.from_numpy(self.rng.integers(0, self.size, k)).to(self.device)

    def sample(self, k: int, fields: tuple[str, ...] | None = None) -> dict[str, torch.Tensor]:
        """A batch of ``k`` stored rows, one tensor per field."""
        idx = self.sample_indices(k)
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
            "fields": {name: value[: self.size].clone() for name, value in self.fields.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["capacity"] != self.capacity:
            raise RetainError(
                f"buffer capacity differs: checkpoint has {state['capacity']}, "
                f"this buffer has {self.capacity}"
            )
        self.size, self.seen = int(state["size"]), int(state["seen"])
        self.rng.bit_generator.state = state["rng"]
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

    def __init__(self, capacity: int, device: torch.device | str | None = None, seed: int = 0):
        super().__init__(capacity, device, seed)
        self.class_seen: dict[int, int] = {}
        self.class_slots: dict[int, list[int]] = {}

    def _choose_slots(self, rows: dict[str, torch.Tensor], n: int):
        if "y" not in rows:
            raise RetainError("a class-balanced buffer needs a 'y' field with class labels")
        labels = rows["y"].detach().cpu().numpy().astype(np.int64)
        writes: dict[int, int] = {}
        for row, label in enumerate(labels.tolist()):
            seen_c = self.class_seen.get(label, 0) + 1
            self.class_seen[label] = seen_c
            own = self.class_slots.setdefault(label, [])
            self.seen += 1
            if self.size < self.capacity:
                slot = self.size
                self.size += 1
                own.append(slot)
            else:
                largest = max(len(s) for s in self.class_slots.values())
                if len(own) < largest:
                    victims = [c for c, s in self.class_slots.items() if len(s) == largest]
                    victim = victims[int(self.rng.integers(len(victims)))]
                    victim_slots = self.class_slots[victim]
                    slot = _pop_random(victim_slots, self.rng)
                    own.append(slot)
                elif self.rng.random() < len(own) / seen_c:
                    slot = own[int(self.rng.integers(len(own)))]
                else:
                    continue
            writes[slot] = row
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


def _pop_random(slots: list[int], rng: np.random.Generator) -> int:
    """Remove and return a random element in O(1) (swap with the last)."""
    i = int(rng.integers(len(slots)))
    slots[i], slots[-1] = slots[-1], slots[i]
    return slots.pop()


BUFFERS = {"reservoir": ReplayBuffer, "class-balanced": ClassBalancedBuffer}


def make_buffer(
    policy: str, capacity: int, device: torch.device | str | None = None, seed: int = 0
) -> ReplayBuffer:
    """Build a buffer by policy name (``reservoir`` or ``class-balanced``)."""
    try:
        cls = BUFFERS[policy]
    except KeyError:
        raise RetainError(
            f"unknown buffer policy {policy!r}; choose one of {sorted(BUFFERS)}"
        ) from None
    return cls(capacity, device, seed)
