"""The learner's lean SGD update (retain.sgd_step): the same parameters as
``torch.optim.SGD.step()`` bit for bit where it is used, and ``optimizer.step()`` itself
wherever anything else could happen in that call."""

import copy
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.optimizer import register_optimizer_step_pre_hook
from torch.utils.data import TensorDataset

from retain import Learner
from retain.sgd_step import lean_sgd_step
from retain.strategies import Naive, Replay


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 3))


def _grads(model: nn.Module, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(6, 5, generator=g), torch.randint(0, 3, (6,), generator=g)
    model.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()


def test_same_parameters_as_sgd_step_over_groups_frozen_rows_and_lr_changes():
    """Two groups with their own learning rates, a parameter without a gradient, the learning
    rate changed between steps (as a scheduler does): equal to SGD's step bit for bit."""
    lean, ref = _model(), _model()
    ref.load_state_dict(lean.state_dict())
    opts = [torch.optim.SGD([{"params": m[0].parameters(), "lr": 0.3},
                             {"params": m[2].parameters()}], lr=0.1) for m in (lean, ref)]
    step = lean_sgd_step(opts[0])
    assert step is not None
    for i in range(5):
        for m in (lean, ref):
            _grads(m, i)
            if i == 2:  # a frozen bias: no gradient this step
                m[2].bias.grad = None
        for opt in opts:
            opt.param_groups[1]["lr"] = 0.1 / (i + 1)
        step()
        opts[1].step()
    for a, b in zip(lean.parameters(), ref.parameters(), strict=True):
        assert torch.equal(a, b)
    assert not any(opts[0].state.values())  # SGD without momentum keeps no state either


@pytest.mark.parametrize("settings", [{"momentum": 0.9}, {"weight_decay": 1e-4},
                                      {"maximize": True}, {"momentum": 0.9, "nesterov": True},
                                      {"lr": torch.tensor(0.1)}])
def test_anything_but_plain_sgd_keeps_its_own_step(settings):
    model = _model()
    kwargs = {"lr": 0.1, **settings}
    assert lean_sgd_step(torch.optim.SGD(model.parameters(), **kwargs)) is None


def test_other_optimizers_subclasses_hooks_and_schedulers_keep_their_own_step():
    model = _model()
    assert lean_sgd_step(torch.optim.Adam(model.parameters())) is None

    class MySGD(torch.optim.SGD):
        pass
    assert lean_sgd_step(MySGD(model.parameters(), lr=0.1)) is None
    hooked = torch.optim.SGD(model.parameters(), lr=0.1)
    handle = hooked.register_step_post_hook(lambda *a: None)
    assert lean_sgd_step(hooked) is None
    handle.remove()
    assert lean_sgd_step(hooked) is not None
    handle = register_optimizer_step_pre_hook(lambda *a: None)
    try:
        assert lean_sgd_step(hooked) is None
    finally:
        handle.remove()
    torch.optim.lr_scheduler.StepLR(hooked, 1)  # patches step to count its calls
    assert lean_sgd_step(hooked) is None


def test_a_sparse_gradient_takes_sgds_own_path():
    lean = nn.Embedding(10, 4, sparse=True)
    ref = copy.deepcopy(lean)
    opts = [torch.optim.SGD(m.parameters(), lr=0.5) for m in (lean, ref)]
    step = lean_sgd_step(opts[0])
    for m in (lean, ref):
        m(torch.tensor([1, 3, 3])).sum().backward()
    step()
    opts[1].step()
    assert torch.equal(lean.weight, ref.weight)
    assert not torch.equal(lean.weight, nn.Embedding(10, 4).weight)


@pytest.mark.parametrize("strategy", [Naive, lambda: Replay(capacity=20, batch_size=4)])
def test_the_learner_uses_it_and_trains_what_sgd_step_trains(strategy, monkeypatch):
    """``learn`` with a plain SGD never calls ``SGD.step`` and ends with the weights that
    calling it would give; with a scheduler it calls it (and no warning says otherwise)."""
    g = torch.Generator().manual_seed(1)
    data = TensorDataset(torch.randn(24, 5, generator=g), torch.randint(0, 3, (24,), generator=g))
    finals = []
    for lean in (True, False):
        model = _model()
        learner = Learner(model, torch.optim.SGD(model.parameters(), lr=0.1),
                          strategies=[strategy()], seed=2)
        calls = []
        original = torch.optim.SGD.step
        monkeypatch.setattr(torch.optim.SGD, "step",
                            lambda self, *a, calls=calls, original=original, **k:
                            calls.append(1) or original(self, *a, **k))
        if not lean:
            monkeypatch.setattr("retain.learner.lean_sgd_step", lambda optimizer: None)
        for _ in range(2):
            learner.learn(data, epochs=2, batch_size=8)
        monkeypatch.undo()
        assert (len(calls) == 0) == lean
        finals.append([p.detach().clone() for p in model.parameters()])
    for a, b in zip(*finals, strict=True):
        assert torch.equal(a, b)
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    learner = Learner(model, opt, scheduler=torch.optim.lr_scheduler.StepLR(opt, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        learner.learn(data, epochs=2, batch_size=8)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 * 0.1**2)  # stepped every epoch


def test_a_learn_that_raises_leaves_no_lean_step_behind():
    """The lean step is chosen for one experience. If a step's callback raises inside
    ``learn``, a later ``update`` after a change of settings (momentum added) must go through
    ``SGD.step`` and honour it, not the step chosen for the broken experience."""
    g = torch.Generator().manual_seed(1)
    data = TensorDataset(torch.randn(24, 5, generator=g), torch.randint(0, 3, (24,), generator=g))
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    learner = Learner(model, opt, seed=2)

    def fail(step):
        raise RuntimeError("callback failed")

    with pytest.raises(RuntimeError, match="callback failed"), learner.every_steps(1, fail):
        learner.learn(data, batch_size=8)
    assert learner._sgd_step is None
    opt.param_groups[0]["momentum"] = 0.9
    learner.update(*data[:8])
    learner.update(*data[8:16])
    assert opt.state[model[0].weight]["momentum_buffer"] is not None  # SGD.step ran, twice
