"""InfLoRA's key property: learning a new task leaves the outputs on earlier tasks' inputs
unchanged (to rounding when the earlier inputs' subspace is kept whole), while the new task is
still learned; without the designed subspace (a plain low-rank branch) they change."""

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from retain import Learner, RetainError
from retain.pretrained.inflora import InfLoRA, add_inflora


def _task(t: int, n=64):
    """Inputs in the coordinates 3t..3t+2 of R^10; the label is the sign of the first one."""
    g = torch.Generator().manual_seed(t)
    x = torch.zeros(n, 10)
    x[:, 3 * t:3 * t + 3] = torch.randn(n, 3, generator=g)
    return TensorDataset(x, 2 * t + (x[:, 3 * t] > 0).long())


def _learner(threshold=1.0):
    torch.manual_seed(0)
    model = add_inflora(nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 6)),
                        ["0", "2"], rank=3, tasks=3)
    trainable = [p for p in model.parameters() if p.requires_grad]
    return Learner(model, torch.optim.Adam(trainable, lr=0.05),
                   strategies=[InfLoRA(threshold=threshold)])


def _outputs_change(learner, forget_subspace=False):
    learner.learn(_task(0), epochs=20, batch_size=16)
    old = _task(0).tensors[0]
    before = learner.outputs(old)
    for t in (1, 2):
        if forget_subspace:  # a plain low-rank branch: directions of the new inputs only
            learner.strategies[0].bases = {}
        learner.learn(_task(t), epochs=20, batch_size=16)
    return float((learner.outputs(old) - before).abs().max()), float(before.abs().max())


def test_earlier_tasks_outputs_do_not_change_and_new_tasks_are_learned():
    learner = _learner()
    change, scale = _outputs_change(learner)
    assert change < 1e-5 * scale
    for t in range(3):  # each task learned: its two classes told apart (layer 0's room)
        x, y = _task(t).tensors
        pairs = learner.outputs(x)[:, 2 * t:2 * t + 2].argmax(1) + 2 * t
        assert (pairs == y).float().mean() > 0.8, t


def test_without_the_designed_subspace_the_outputs_change():
    change, scale = _outputs_change(_learner(), forget_subspace=True)
    assert change > 0.05 * scale


def test_a_lower_threshold_trades_a_small_change_for_room():
    change, scale = _outputs_change(_learner(threshold=0.95))
    assert change < 0.2 * scale


def test_room_and_layers_are_checked():
    learner = _learner()
    for t in range(3):
        learner.learn(_task(t), batch_size=16)
    with pytest.raises(RetainError, match="room for 3 tasks"):
        learner.learn(_task(0), batch_size=16)
    model = nn.Linear(4, 2)
    with pytest.raises(RetainError, match="InfLoRALinear"):
        Learner(model, torch.optim.SGD(model.parameters(), lr=0.1),
                strategies=[InfLoRA()]).learn(TensorDataset(torch.randn(4, 4),
                                                            torch.tensor([0, 1, 0, 1])))
    with pytest.raises(RetainError, match="no nn.Linear"):
        add_inflora(nn.Sequential(nn.Linear(4, 2)), ["9"])
