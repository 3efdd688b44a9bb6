"""``Replay(draw="passes")``: shuffled passes through the memory, as Avalanche's ReplayPlugin
and a hand-written loop cycling over the memory replay it: checked against such a loop, bit
for bit, and resumed exactly from a checkpoint taken in the middle of a pass."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from retain import Learner, RetainError
from retain.scenarios import Experience
from retain.strategies import Replay


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 4))


def _data(seed: int, n: int = 30) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    return TensorDataset(torch.randn(n, 5, generator=g), torch.randint(0, 4, (n,), generator=g))


def _learner(**kwargs) -> tuple[Learner, Replay]:
    replay = Replay(capacity=20, batch_size=8, update="experience", draw="passes", **kwargs)
    model = _model()
    return Learner(model, torch.optim.SGD(model.parameters(), lr=0.1), strategies=[replay],
                   seed=5), replay


def test_passes_train_the_weights_of_a_loop_cycling_over_the_memory():
    """After the first experience fills the memory (20 rows), each step of the second takes
    the next 8, 8, then 4 rows of a shuffled pass: the hand-written loop with the same
    permutations ends with the same weights, bit for bit."""
    learner, replay = _learner()
    learner.learn(_data(0), batch_size=10)
    memory = replay.buffer.contents()
    mx, my = memory["x"].clone(), memory["y"].clone()
    draws = copy.deepcopy(replay.buffer.draws)
    batches = copy.deepcopy(learner.generator)
    model = copy.deepcopy(learner.model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    drawn = []
    original = replay._pass_rows
    replay._pass_rows = lambda k: drawn.append(original(k)) or drawn[-1]
    new = _data(1)
    learner.learn(new, epochs=3, batch_size=10)
    assert [len(d) for d in drawn] == [8, 8, 4] * 3  # 9 steps: three passes of 20 rows
    for i in range(0, 9, 3):
        assert sorted(torch.cat(drawn[i : i + 3]).tolist()) == list(range(20))

    x, y = new.tensors
    order, at = None, 0
    for _ in range(3):
        perm = torch.randperm(30, generator=batches)
        for start in range(0, 30, 10):
            idx = perm[start : start + 10]
            if order is None or at >= 20:
                order, at = torch.randperm(20, generator=draws), 0
            rows = order[at : at + 8]
            at += len(rows)
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(model(torch.cat([x[idx], mx[rows]])),
                            torch.cat([y[idx], my[rows]])).backward()
            optimizer.step()
    for a, b in zip(learner.model.parameters(), model.parameters(), strict=True):
        assert torch.equal(a, b)


def test_a_checkpoint_in_the_middle_of_a_pass_resumes_it_exactly(tmp_path):
    learner, replay = _learner()
    learner.learn(_data(0), batch_size=10)
    experience = _data(1)
    exp = Experience(experience)
    learner.begin_experience(exp)
    x, y = experience.tensors
    learner.step(x[:10], y[:10])  # 8 of the pass's 20 rows drawn
    assert replay.memory_pass["at"] == 8
    learner.save(tmp_path / "ckpt")
    twin = Learner.load(tmp_path / "ckpt", model=_model())
    twin_replay = twin.strategies[0]
    assert twin_replay.memory_pass["at"] == 8
    twin.begin_experience(exp)
    for start in (10, 20, 0, 10):
        for each in (learner, twin):
            each.step(x[start : start + 10], y[start : start + 10])
    for a, b in zip(learner.model.parameters(), twin.model.parameters(), strict=True):
        assert torch.equal(a, b)


def test_draw_is_checked_and_random_stays_the_default():
    with pytest.raises(RetainError, match="draw must be 'random' or 'passes'"):
        Replay(draw="cycle")
    assert Replay().draw == "random"
    learner, replay = _learner()
    assert replay.memory_pass is None and "memory_pass" not in replay.state_dict()
