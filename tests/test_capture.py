"""Learner(compile=...): the captured step equals the eager one, and refuses what it cannot
capture with the reason."""

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from retain import Learner
from retain.errors import RetainError
from retain.strategies import ICaRL, LwF, Replay


def train(compile, strategies) -> list[torch.Tensor]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    learner = Learner(model, torch.optim.SGD(model.parameters(), lr=0.1),
                      strategies=strategies, compile=compile)
    g = torch.Generator().manual_seed(1)
    for _ in range(2):  # the second experience replays and distils from the teacher
        learner.learn(TensorDataset(torch.randn(32, 6, generator=g),
                                    torch.randint(0, 3, (32,), generator=g)), batch_size=8)
    return [p.detach().clone() for p in model.parameters()]


@pytest.mark.slow  # inductor compiles forward, backward and the optimizer step: ~25 s here
def test_compiled_step_trains_to_the_eager_weights():
    eager = train(None, [Replay(capacity=20), LwF()])
    compiled = train(True, [Replay(capacity=20), LwF()])
    for a, b in zip(eager, compiled, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert any((a != 0).any() for a in eager)


def test_compile_refuses_a_strategy_it_cannot_capture():
    model = nn.Linear(6, 3)
    with pytest.raises(RetainError, match=r"cannot capture ICaRL \(loss_terms"):
        Learner(model, torch.optim.SGD(model.parameters(), lr=0.1),
                strategies=[ICaRL(capacity=10)], compile=True)


def test_compile_refuses_an_unknown_mode():
    model = nn.Linear(6, 3)
    with pytest.raises(RetainError, match="compile must be True, False or one of"):
        Learner(model, torch.optim.SGD(model.parameters(), lr=0.1), compile="fast")
