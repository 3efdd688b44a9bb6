"""One check suite over every strategy in the catalog (as River's ``check_estimator``): a
strategy is tested the day it is added. Each check builds the strategy from its name with its
default hyper-parameters."""

import doctest
import inspect

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from retain import Learner, RetainError
from retain.strategies import STRATEGIES, make_strategy

NAMES = sorted(STRATEGIES)


def _model() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))


def _data(seed: int) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    return TensorDataset(torch.randn(24, 6, generator=g), torch.randint(0, 3, (24,), generator=g))


def _learner(strategy) -> Learner:
    model = _model()
    return Learner(model, torch.optim.SGD(model.parameters(), lr=0.01), strategies=[strategy])


def _trained(name: str) -> Learner:
    learner = _learner(make_strategy(name))
    for seed in (1, 2):
        learner.learn(_data(seed), batch_size=8)
    return learner


def _tensors(obj, path="state"):
    """Every tensor in a nested state, with where it is."""
    if isinstance(obj, torch.Tensor):
        yield path, obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from _tensors(v, f"{path}.{k}")
    elif isinstance(obj, list | tuple):
        for i, v in enumerate(obj):
            yield from _tensors(v, f"{path}[{i}]")


def _same(a, b) -> bool:
    ta, tb = dict(_tensors(a)), dict(_tensors(b))
    return ta.keys() == tb.keys() and all(torch.equal(ta[k], tb[k]) for k in ta)


@pytest.mark.parametrize("name", NAMES)
def test_state_round_trips(name):
    learner = _trained(name)
    strategy = learner.strategies[0]
    copy = make_strategy(name, **strategy.hyperparameters)
    copy.load_state_dict(strategy.state_dict())
    assert _same(copy.state_dict(), strategy.state_dict())
    assert copy.state_dict()["hyperparameters"] == strategy.state_dict()["hyperparameters"]


@pytest.mark.parametrize("name", NAMES)
def test_resume_is_exact(name):
    learner = _trained(name)
    resumed = _learner(make_strategy(name, **learner.strategies[0].hyperparameters))
    resumed.load_state_dict(learner.state_dict())
    for each in (learner, resumed):
        each.learn(_data(3), batch_size=8)
    for a, b in zip(learner.model.parameters(), resumed.model.parameters(), strict=True):
        assert torch.equal(a, b)


class _Elsewhere:
    """A learner view on the ``meta`` device: binding must move every state tensor there."""

    def __init__(self, learner: Learner):
        self.device = torch.device("meta")
        self.model = learner.model.to("meta")
        for name in ("optimizer", "loss_fn", "generator", "task_type", "seen_classes",
                     "eval_batch_size", "output_map"):
            setattr(self, name, getattr(learner, name))


@pytest.mark.parametrize("name", NAMES)
def test_bind_moves_the_state_to_the_learners_device(name):
    learner = _trained(name)
    strategy = learner.strategies[0]
    strategy.bind(_Elsewhere(learner))
    stray = [path for path, t in _tensors(strategy.state_dict()) if t.device.type != "meta"
             and t.dim() > 0]
    assert not stray, f"{name}: state left behind on bind: {stray}"


@pytest.mark.parametrize("name", NAMES)
def test_repr_shows_every_hyperparameter_and_rebuilds_the_strategy(name):
    strategy = make_strategy(name)
    cls = type(strategy)
    params = [n for n, p in inspect.signature(cls.__init__).parameters.items()
              if n != "self" and p.kind is not p.VAR_KEYWORD]
    assert list(strategy.hyperparameters) == params
    rebuilt = eval(repr(strategy), {cls.__name__: cls})  # noqa: S307 (our own repr)
    assert dict(rebuilt.hyperparameters) == dict(strategy.hyperparameters)
    with pytest.raises(TypeError):
        strategy.hyperparameters["x"] = 1  # fixed after construction


def _other_value(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value * 2
    return None


@pytest.mark.parametrize("name", NAMES)
def test_a_state_with_other_hyperparameters_is_refused_and_listed(name):
    strategy = make_strategy(name)
    changed = {k: _other_value(v) for k, v in strategy.hyperparameters.items()
               if _other_value(v) is not None}
    if not changed:
        pytest.skip(f"{name} has no numeric or boolean hyper-parameter")
    key, value = next(iter(changed.items()))
    other = make_strategy(name, **{key: value})
    before = strategy.state_dict()
    with pytest.raises(RetainError, match=f"{key}: saved {value!r}"):
        strategy.load_state_dict(other.state_dict())
    assert _same(strategy.state_dict(), before)


@pytest.mark.parametrize("name", NAMES)
def test_the_docstring_example_runs(name):
    cls = STRATEGIES[name]
    tests = [t for t in doctest.DocTestFinder().find(cls, cls.__name__,
                                                     globs=vars(inspect.getmodule(cls)))
             if t.name == cls.__name__ and t.examples]
    assert tests, f"{cls.__name__} has no docstring example"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in tests:
        runner.run(test)
    assert runner.summarize(verbose=False).failed == 0
