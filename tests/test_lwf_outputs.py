"""LwF reads the frozen teacher's outputs of an experience's rows once the first epoch is over:
the same training as running the teacher every step, with fewer teacher rows."""

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from retain import Learner
from retain.strategies import LwF, Replay


def train(strategies, epochs: int = 3, live: bool = False,
          shuffle: bool = True) -> tuple[list[torch.Tensor], int]:
    """Weights after two experiences, and the rows the teacher saw during the second."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 4))
    learner = Learner(model, torch.optim.SGD(model.parameters(), lr=0.1), strategies=strategies,
                      eval_batch_size=7)  # several chunks for the teacher's pass
    g = torch.Generator().manual_seed(1)
    first, second = (TensorDataset(torch.randn(40, 6, generator=g),
                                   torch.randint(0, 4, (40,), generator=g)) for _ in range(2))
    learner.learn(first, epochs=epochs, batch_size=8)
    lwf = next(s for s in strategies if isinstance(s, LwF))
    seen = []
    lwf.teacher.module.register_forward_hook(lambda m, inputs, out: seen.append(len(out)))
    if live:  # the textbook step: the teacher on every row of every step
        lwf.extend_batch = lambda learner, batch: setattr(lwf, "_new", None)
        learner.strategies = strategies  # the hook table takes the patched hook
    learner.learn(second, epochs=epochs, batch_size=8, shuffle=shuffle)
    return [p.detach().clone() for p in model.parameters()], sum(seen)


@pytest.mark.parametrize("shuffle", [True, False])  # rows: a permutation's slice, or a slice
def test_outputs_read_once_the_first_epoch_is_over_train_as_the_teacher_every_step(shuffle):
    cached, cached_rows = train([LwF()], shuffle=shuffle)
    live, live_rows = train([LwF()], live=True, shuffle=shuffle)
    for a, b in zip(cached, live, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert live_rows == 3 * 40  # every step, every epoch
    assert cached_rows == 2 * 40  # the first epoch's steps, then one pass


def test_replayed_rows_go_through_the_teacher_with_the_incoming_rows_read():
    cached, cached_rows = train([Replay(capacity=20, batch_size=4), LwF()])
    live, live_rows = train([Replay(capacity=20, batch_size=4), LwF()], live=True)
    for a, b in zip(cached, live, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert live_rows == 3 * (40 + 5 * 4)  # 5 steps an epoch, 4 replayed rows each
    assert cached_rows == 40 + 5 * 4 + 40 + 2 * 5 * 4


def test_one_epoch_runs_the_teacher_every_step_and_keeps_nothing():
    _, rows = train([LwF()], epochs=1)
    assert rows == 40
