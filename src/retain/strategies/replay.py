"""Experience replay (Chaudhry et al. 2019 "On Tiny Episodic Memories"; Buzzega et al. 2020)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from retain.buffers import BUFFERS, make_buffer
from retain.errors import RetainError
from retain.strategies.base import Batch, Strategy

if TYPE_CHECKING:
    from retain.scenarios import Experience
    from retain.strategies.contract import LearnerView


class Replay(Strategy):
    """Mix stored samples of the past into every step.

    Each step appends ``batch_size`` rows sampled from a fixed-capacity memory (default: as many
    as the incoming batch) to the incoming rows, so one forward/backward pass trains on both;
    after the step the incoming rows are offered to the memory.

    Args:
        capacity: number of samples the memory holds.
        batch_size: replayed rows per step (default: the incoming batch size).
        policy: ``reservoir`` (uniform over the stream), ``class-balanced`` (CBRS) or
            ``experience-balanced`` (an equal share per experience, as Avalanche's default).
        seed: seed of the memory's sampling.
        update: ``step`` (default): the incoming rows are offered to the memory after each
            step, so it also holds recent rows of the current experience (Buzzega et al.'s
            ER, mammoth). ``experience``: the experience's samples are offered once it is
            learned, so training replays past experiences only (Avalanche's ``Replay``,
            Chaudhry et al. 2019); this suits daily updates where a day is one experience.
        draw: ``random`` (default): each step's memory rows are drawn at random, ``batch_size``
            of them every step. ``passes``: shuffled passes through the memory, every stored
            row replayed once a pass, the pass's last draw the rows left (fewer than
            ``batch_size`` when they do not divide the memory): what Avalanche's
            ``ReplayPlugin`` and a hand-written loop cycling a ``DataLoader`` over the
            memory do. A memory whose size changed starts a new pass. One process only.

    Example (one experience of random data; ``s`` is the strategy):

    >>> import torch
    >>> from torch import nn
    >>> from torch.utils.data import TensorDataset
    >>> from retain import Learner
    >>> _ = torch.manual_seed(0)
    >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    >>> s = Replay(capacity=20)
    >>> learner = Learner(model, torch.optim.SGD(model.parameters(), lr=0.1), strategies=[s])
    >>> data = TensorDataset(torch.randn(32, 4), torch.randint(0, 3, (32,)))
    >>> _ = learner.learn(data, batch_size=8)
    >>> len(s.buffer)
    20
    """

    name = "replay"
    # one replicated memory: every rank inserts all ranks' rows with the same seed and draws
    # its share of one global sample (docs/distributed.md)
    distributed = True

    def __init__(self, capacity: int = 500, batch_size: int | None = None,
                 policy: str = "reservoir", seed: int = 0, update: str = "step",
                 draw: str = "random"):
        BUFFERS.require(policy)  # an unknown policy is refused before anything changes
        if update not in ("step", "experience"):
            raise RetainError(f"update must be 'step' or 'experience', got {update!r}")
        if draw not in ("random", "passes"):
            raise RetainError(f"draw must be 'random' or 'passes', got {draw!r}")
        super().__init__(capacity=capacity, batch_size=batch_size, policy=policy, seed=seed)
        self.update, self.draw = update, draw
        self.batch_size = batch_size
        self.add_state("buffer", make_buffer(policy, capacity, seed=seed))
        # draw="passes": this pass's slots in order and how many were drawn (saved while set)
        self.add_state("memory_pass", None)
        self._fields: tuple[str, ...] | None = None

    def extend_batch(self, learner: LearnerView, batch: Batch) -> None:
        if self.buffer.size == 0:
            return
        k = self.batch_size or batch.n_new
        if self.draw == "passes":
            rows = self._pass_rows(k)
            mem = {name: self.buffer.fields[name].index_select(0, rows)
                   for name in self._fields or tuple(self.buffer.fields)}
        else:
            mem = self.buffer.sample(k, self._fields, share=None if learner.world.size == 1
                                     else self.share(learner, k))
        batch.append(mem["x"], mem["y"], mem.get("task"))

    def _pass_rows(self, k: int) -> torch.Tensor:
        """The next ``k`` slots of the current pass through the memory (fewer at its end)."""
        now = self.memory_pass
        if now is None or now["at"] >= now["order"].numel() or \
                now["order"].numel() != self.buffer.size:
            buffer = self.buffer
            order = (torch.randperm(buffer.size, generator=buffer.draws)
                     if buffer.draws is not None
                     else torch.from_numpy(buffer.rng.permutation(buffer.size)))
            now = self.memory_pass = {"order": order.to(buffer.device), "at": 0}
        rows = now["order"][now["at"] : now["at"] + k]
        now["at"] += rows.shape[0]
        return rows

    def share(self, learner: LearnerView, k: int) -> tuple[int, int]:
        """Where this rank's ``k`` memory draws sit in one draw for the whole step (several
        ranks only: in one process the hot path makes no call for it)."""
        return learner.world.share(k, fixed=self.batch_size is not None)

    def before_experience(self, learner: LearnerView, experience: Experience) -> None:
        if self.draw == "passes" and learner.world.size > 1:
            raise RetainError("Replay(draw='passes') runs in one process; with several, "
                              "use draw='random' (one global draw shared by the ranks)")
        if self.update == "step":  # the experience's rows start arriving now
            self.buffer.new_experience()

    def overrides(self, hook: str) -> bool:
        # only the hook that fills the memory in the chosen mode is called
        if hook == "after_step" and self.update == "experience":
            return False
        if (hook == "after_experience" and self.update == "step"
                and type(self).after_experience is Replay.after_experience):
            return False
        return super().overrides(hook)

    def after_experience(self, learner: LearnerView, experience: Experience) -> None:
        if self.update != "experience":
            return
        self.buffer.new_experience()
        for x, y, task in learner.batches(experience.train):
            rows = {"x": x, "y": y} if task is None else {"x": x, "y": y, "task": task}
            self.buffer.add(**self.experience_rows(learner, rows))
        self._fields = tuple(self.buffer.fields) or None
        self.memory_pass = None  # a new memory: a new pass (as a new DataLoader over it)

    def experience_rows(self, learner: LearnerView, rows: dict[str, torch.Tensor]
                        ) -> dict[str, torch.Tensor]:
        """The fields stored for a batch of a learned experience (``update="experience"``);
        DER adds the model's logits."""
        return rows

    def after_step(self, learner: LearnerView, batch: Batch) -> None:
        if self._fields is None:
            self._fields = ("x", "y") if batch.new_task is None else ("x", "y", "task")
        rows = {"x": batch.new_x, "y": batch.new_y}
        if batch.new_task is not None:
            rows["task"] = batch.new_task
        if learner.world.size == 1:
            self.buffer.add(**rows)
        else:  # every rank's rows, in rank order: only those the memory keeps travel
            self.buffer.add_from_ranks(rows, learner.world)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self._fields = tuple(self.buffer.fields) or None
