"""The Learner: bad input, state round trips, and that strategies change behaviour."""

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from retain import Learner, RetainError, datasets, scenarios
from retain.strategies import EWC, LwF, Naive, OnlineEWC, Replay


def _mlp(n_in=64, n_out=10, hidden=64, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(n_in, hidden), nn.ReLU(),
                         nn.Linear(hidden, n_out))


def _learner(strategies=(), lr=0.05, **kw):
    model = _mlp()
    return Learner(model, torch.optim.SGD(model.parameters(), lr=lr), strategies=strategies,
                   **kw)


@pytest.fixture(scope="module")
def split_digits():
    train, test = datasets.digits()
    return scenarios.class_incremental(train, test, n_experiences=5)


def test_replay_retains_while_naive_forgets(split_digits):
    naive = _learner([Naive()]).run(split_digits, epochs=3, batch_size=10)
    replay = _learner([Replay(capacity=300)]).run(split_digits, epochs=3, batch_size=10)
    assert naive.forgetting > 0.8  # fine-tuning forgets earlier classes almost entirely
    assert naive.average_accuracy < 0.3
    assert replay.average_accuracy > naive.average_accuracy + 0.3
    assert replay.forgetting < naive.forgetting / 2


def test_task_incremental_masks_outputs_to_the_task(split_digits):
    train, test = datasets.digits()
    stream = scenarios.task_incremental(train, test, n_experiences=5)
    learner = _learner([EWC(lambda_=10.0)])
    result = learner.run(stream, epochs=2, batch_size=10)
    assert result.average_accuracy > 0.9
    x, _, t = stream[0].test.tensors
    assert set(learner.predict(x, task=t).unique().tolist()) <= {0, 1}


def test_accuracy_matrix_shape_and_names(split_digits):
    result = _learner().run(split_digits, epochs=1, batch_size=32)
    assert result.accuracy_matrix.shape == (5, 5)
    assert result.baseline.shape == (5,)
    assert result.experience_names[0] == "classes [0, 1]"
    assert sum(result.samples_seen) == sum(len(e.train) for e in split_digits)


def test_state_dict_round_trip_resumes_identically(split_digits):
    """Train, snapshot, train more; a learner restored from the snapshot ends identical."""
    def make():
        return _learner([EWC(lambda_=5.0), LwF(), Replay(capacity=50),
                         OnlineEWC(lambda_=1.0, gamma=0.9)])

    a = make()
    a.learn(split_digits[0], batch_size=16)
    snapshot = {k: v for k, v in a.state_dict().items()}
    import copy
    snapshot = copy.deepcopy(snapshot)
    a.learn(split_digits[1], batch_size=16)
    b = make()
    b.load_state_dict(snapshot)
    b.learn(split_digits[1], batch_size=16)
    for p, q in zip(a.model.parameters(), b.model.parameters(), strict=True):
        assert torch.equal(p, q)


def test_state_dict_of_other_strategies_is_refused():
    with pytest.raises(RetainError, match="strategies"):
        _learner([Naive()]).load_state_dict(_learner([Replay()]).state_dict())


def test_checkpoint_of_another_model_is_refused():
    other = nn.Linear(3, 2)
    state = Learner(other, torch.optim.SGD(other.parameters(), lr=0.1)).state_dict()
    with pytest.raises(RetainError, match="does not fit this model"):
        _learner().load_state_dict(state)


@pytest.mark.parametrize("x, y, message", [
    (torch.randn(4, 5), torch.zeros(4, dtype=torch.long), "do not fit the model"),
    (torch.randn(4, 64), torch.tensor([0, 1, 2, 10]), r"labels must be in \[0, 9\]"),
    (torch.randn(4, 64), torch.tensor([0, 1, -1, 2]), "labels must be in"),
    (torch.full((4, 64), float("nan")), torch.zeros(4, dtype=torch.long), "NaN or inf"),
    (torch.randn(4, 64), torch.zeros(4), "must be integers"),
    (torch.randn(0, 64), torch.zeros(0, dtype=torch.long), "empty"),
    (torch.randn(4, 64), torch.zeros(3, dtype=torch.long), "4 inputs but 3 labels"),
])
def test_bad_input_gets_a_clear_error(x, y, message):
    learner = _learner()
    before = [p.clone() for p in learner.model.parameters()]
    if x.shape[0] == y.shape[0]:
        with pytest.raises(RetainError, match=message):
            learner.learn(TensorDataset(x, y))
    with pytest.raises(RetainError, match=message):
        learner.update(x, y)
    assert all(torch.equal(a, b) for a, b in zip(before, learner.model.parameters(),
                                                 strict=True))


def test_the_model_is_probed_once_per_input_shape_and_parameters(monkeypatch):
    """The checks run the model on two rows once; later experiences of the same shape read
    the outputs noted then, and a new input shape, a grown or a replaced output layer is
    probed again, so labels are still checked against the model as it is."""
    from retain import checks
    calls = []
    probe = checks.probe
    monkeypatch.setattr(checks, "probe", lambda m, x: calls.append(x.shape) or probe(m, x))
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3))
    learner = Learner(model, torch.optim.SGD(model.parameters(), lr=0.1))
    data = TensorDataset(torch.randn(8, 4), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1]))
    for _ in range(3):
        learner.learn(data, batch_size=4)
    learner.predict(torch.randn(5, 4))
    learner.predict(torch.randn(7, 4))
    assert calls == [(2, 4), (1, 4)]  # the checks' two rows, predict's one row
    with pytest.raises(RetainError, match="do not fit the model"):
        learner.learn(TensorDataset(torch.randn(8, 5), torch.zeros(8, dtype=torch.long)))
    learner.grow_classes(5)
    learner.learn(TensorDataset(torch.randn(4, 4), torch.tensor([4, 3, 4, 3])))
    model[2] = nn.Linear(6, 2)  # replaced by hand: fewer outputs
    learner.optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(RetainError, match=r"labels must be in \[0, 1\]"):
        learner.learn(data)
    assert len(calls) == 5


def test_regression_with_replay_ewc_and_lwf():
    torch.manual_seed(0)
    x = torch.randn(200, 3)
    w1, w2 = torch.tensor([1.0, -2.0, 0.5]), torch.tensor([-1.0, 1.0, 2.0])
    tasks = [TensorDataset(x, x @ w) for w in (w1, w2)]
    model = nn.Linear(3, 1)
    learner = Learner(model, torch.optim.SGD(model.parameters(), lr=0.05), loss=nn.MSELoss(),
                      strategies=[EWC(lambda_=1.0), Replay(capacity=50), LwF(alpha=0.5)])
    assert learner.task_type == "regression"
    stream = scenarios.from_datasets([(t, t) for t in tasks])
    result = learner.run(stream, epochs=3, batch_size=20)
    assert result.metric == "mse"
    assert np.all(np.isfinite(result.accuracy_matrix))
    assert result.accuracy_matrix[0, 0] < result.baseline[0]  # it learned task 0


def test_update_returns_loss_and_predict_gives_classes():
    learner = _learner()
    x, y = torch.randn(16, 1, 8, 8), torch.randint(0, 10, (16,))
    losses = [learner.update(x, y) for _ in range(30)]
    assert isinstance(losses[0], float) and losses[-1] < losses[0]
    assert torch.equal(learner.predict(x), learner.outputs(x).argmax(1))
    assert learner.samples_seen == 16 * 30


def test_schedulers_step_at_the_chosen_interval(split_digits):
    model = _mlp()
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    learner = Learner(model, opt, scheduler=sched, scheduler_interval="experience")
    learner.learn(split_digits[0], epochs=3)
    learner.learn(split_digits[1], epochs=3)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.25)


def test_wrong_arguments_are_named():
    model = _mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(RetainError, match="nn.Module"):
        Learner("model", opt)
    with pytest.raises(RetainError, match="Strategy"):
        Learner(model, opt, strategies=["ewc"])
    with pytest.raises(RetainError, match="scheduler_interval"):
        Learner(model, opt, scheduler_interval="day")


def _trained(seed):
    model = _mlp(seed=seed)
    learner = Learner(model, torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9),
                      strategies=[EWC(lambda_=1.0), Replay(capacity=50)], seed=seed)
    g = torch.Generator().manual_seed(seed)
    learner.learn(TensorDataset(torch.randn(40, 64, generator=g),
                                torch.randint(0, 10, (40,), generator=g)), batch_size=8)
    return learner


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.shape == b.shape and bool((a == b).all())
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def _wrong_shape(state):
    state["model"]["3.weight"] = torch.zeros(10, 5)


def _extra_group(state):
    state["optimizer"]["param_groups"].append(dict(state["optimizer"]["param_groups"][0]))


def _second_strategy_saved_otherwise(state):
    state["strategies"][1]["state"]["hyperparameters"]["capacity"] = 7


def _second_strategy_lacks_its_buffer(state):
    state["strategies"][1]["state"].pop("buffer")


def _no_generator(state):
    state["learner"].pop("generator")


@pytest.mark.parametrize("spoil", [_wrong_shape, _extra_group, _second_strategy_saved_otherwise,
                                   _second_strategy_lacks_its_buffer, _no_generator])
def test_a_state_that_does_not_fit_changes_nothing(spoil):
    learner, other = _trained(0), _trained(1)
    before = _trained(0).state_dict()
    state = other.state_dict()
    spoil(state)
    with pytest.raises(RetainError):
        learner.load_state_dict(state)
    assert _same(learner.state_dict(), before)
    assert not _same(other.state_dict()["model"], before["model"])  # a load would show
