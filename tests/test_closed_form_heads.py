"""Closed-form heads (NCM, SLDA, RanPAC): the same head whatever the order and split of the
experiences, equal to the textbook formulas, and exact through a checkpoint."""

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from retain import Learner, RetainError
from retain.backbone import cache_stream, features, freeze
from retain.scenarios.experience import make_stream
from retain.strategies import NCM, SLDA, RanPAC
from retain.strategies.ranpac import RIDGES

HEADS = {
    "ncm": lambda: NCM(),
    "ncm-cosine": lambda: NCM(normalize=True),
    "slda": lambda: SLDA(),
    "ranpac": lambda: RanPAC(projection=64, ridge=0.5),
}


def _data(n=90, d=5, classes=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(classes, d, generator=g) * 2
    y = torch.arange(n) % classes
    return centres[y] + torch.randn(n, d, generator=g, dtype=torch.float32), y


def _state_tensors(head):
    return {k: v for k, v in head.state_dict().items() if isinstance(v, torch.Tensor)}


@pytest.mark.parametrize("name", HEADS)
def test_any_order_of_experiences_gives_the_joint_head(name):
    x, y = _data()
    parts = [(x[y < 2], y[y < 2]), (x[(y >= 2) & (y < 4)], y[(y >= 2) & (y < 4)]),
             (x[y >= 4], y[y >= 4])]
    joint = HEADS[name]().fit(x.double(), y)
    probe = torch.randn(40, 5, dtype=torch.float64)
    for order in ((0, 1, 2), (2, 0, 1), (1, 2, 0)):
        head = HEADS[name]()
        for i in order:
            head.fit(*parts[i])
        mine, theirs = _state_tensors(head), _state_tensors(joint)
        assert mine.keys() == theirs.keys()
        for key in mine:
            assert torch.allclose(mine[key], theirs[key], rtol=1e-12, atol=1e-9), (name, key)
        assert torch.allclose(head.scores(probe), joint.scores(probe), rtol=1e-9, atol=1e-9)
        assert torch.equal(head.predict(probe), joint.predict(probe))


def test_ncm_and_slda_equal_the_textbook_formulas():
    x, y = _data()
    xs, ys = x.double().numpy(), y.numpy()
    means = np.stack([xs[ys == c].mean(0) for c in range(6)])
    ncm = NCM().fit(x, y)
    assert np.allclose(ncm.sums.numpy() / ncm.counts.numpy()[:, None], means)
    centred = xs - means[ys]
    sigma = centred.T @ centred / len(xs)
    slda = SLDA(shrinkage=0.1).fit(x, y)
    assert np.allclose(slda.covariance().numpy(), sigma)
    precision = np.linalg.inv(0.9 * sigma + 0.1 * np.eye(5))
    probe = np.random.default_rng(1).normal(size=(20, 5))
    expected = probe @ precision @ means.T - 0.5 * np.einsum("cd,de,ce->c", means, precision,
                                                             means)
    assert np.allclose(slda.scores(torch.from_numpy(probe)).numpy(), expected)


def test_ranpac_equals_ridge_regression_on_the_projected_features():
    x, y = _data()
    head = RanPAC(projection=32, ridge=2.0, seed=3).fit(x, y)
    w = torch.randn(5, 32, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    h = torch.relu(x.double() @ w).numpy()
    target = np.eye(6)[y.numpy()]
    beta = np.linalg.solve(h.T @ h + 2.0 * np.eye(32), h.T @ target)
    probe = torch.randn(10, 5, dtype=torch.float64)
    expected = torch.relu(probe @ w).numpy() @ beta
    assert np.allclose(head.scores(probe).numpy(), expected)


def test_ranpac_chooses_the_ridge_with_the_least_validation_error():
    x, y = _data(n=300)
    head = RanPAC(projection=48, val_fraction=0.3, seed=1).fit(x, y)
    held = np.random.default_rng(1).random(300) < 0.3
    w = torch.randn(5, 48, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    h, target = torch.relu(x.double() @ w).numpy(), np.eye(6)[y.numpy()]
    errors = []
    for ridge in RIDGES:
        fit = ~held
        beta = np.linalg.solve(h[fit].T @ h[fit] + ridge * np.eye(48), h[fit].T @ target[fit])
        errors.append(((h[held] @ beta - target[held]) ** 2).sum())
    assert head.n_val == held.sum()
    assert np.allclose(head.validation_errors(), errors, rtol=1e-6, atol=1e-6)
    head.predict(x.double())
    assert head.chosen_ridge == RIDGES[int(np.argmin(errors))]


def _stream(seed=0):
    x, y = _data(n=180, d=8, seed=seed)
    (x, test_x), (y, test_y) = x.split(120), y.split(120)
    pairs = [(TensorDataset(x[(y // 2) == t], y[(y // 2) == t]),
              TensorDataset(test_x[(test_y // 2) == t], test_y[(test_y // 2) == t]))
             for t in range(3)]
    return make_stream(pairs, "toy")


def _learner(head, d=16):
    torch.manual_seed(0)
    backbone = freeze(nn.Sequential(nn.Linear(8, d), nn.Tanh()))
    model = nn.Sequential(backbone, nn.Linear(d, 6))
    return Learner(model, torch.optim.SGD(model[-1].parameters(), lr=0.0), strategies=[head])


@pytest.mark.parametrize("name", HEADS)
def test_a_learner_over_a_frozen_backbone_forgets_nothing(name):
    stream = _stream()
    incremental = _learner(HEADS[name]())
    result = incremental.run(stream, batch_size=16)
    joint_data = TensorDataset(*(torch.cat(t) for t in zip(*(e.train.tensors for e in stream),
                                                               strict=True)))
    joint = _learner(HEADS[name]())
    joint.learn(joint_data, batch_size=16)
    probe = torch.cat([e.test.tensors[0] for e in stream])
    assert torch.equal(incremental.predict(probe), joint.predict(probe))
    # the run scored the head it ended with exactly as a joint fit scores
    assert result.accuracy_matrix[-1][0] == joint.evaluate(stream[0].test)


@pytest.mark.parametrize("name", HEADS)
def test_cached_features_give_the_same_head_as_the_backbone(name):
    stream = _stream()
    full = _learner(HEADS[name]())
    full.run(stream, batch_size=16)
    backbone = full.model[0]
    cached = cache_stream(backbone, stream)
    head = nn.Linear(16, 6)
    quick = Learner(head, torch.optim.SGD(head.parameters(), lr=0.0),
                    strategies=[HEADS[name]()])
    quick.run(cached, batch_size=16)
    probe = torch.cat([e.test.tensors[0] for e in stream])
    assert torch.equal(full.predict(probe), quick.predict(features(
        backbone, TensorDataset(probe, torch.zeros(len(probe), dtype=torch.long))).tensors[0]))


@pytest.mark.parametrize("name", HEADS)
def test_a_saved_head_resumes_exactly(name, tmp_path):
    stream = _stream()
    learner = _learner(HEADS[name]())
    learner.learn(stream[0], batch_size=16)
    learner.save(tmp_path / "ckpt")
    resumed = Learner.load(tmp_path / "ckpt", model=_learner(HEADS[name]()).model)
    for each in (learner, resumed):
        each.learn(stream[1], batch_size=16)
    probe = torch.randn(30, 8)
    assert torch.equal(learner.predict(probe), resumed.predict(probe))
    for key, value in _state_tensors(learner.strategies[0]).items():
        assert torch.equal(value, _state_tensors(resumed.strategies[0])[key])


def test_bad_input_is_refused_clearly():
    with pytest.raises(RetainError, match="integers"):
        NCM().fit(torch.randn(4, 3), torch.tensor([0.0, 1.0, 0.0, 1.0]))
    head = RanPAC(projection=8, ridge=1.0).fit(torch.randn(4, 3), torch.tensor([0, 1, 0, 1]))
    with pytest.raises(RetainError, match="3-dimensional features, got 5"):
        head.fit(torch.randn(4, 5), torch.tensor([0, 1, 0, 1]))
    with pytest.raises(RetainError, match="shrinkage"):
        SLDA(shrinkage=2.0)
    with pytest.raises(RetainError, match="trainable parameters"):
        features(nn.Linear(3, 2), TensorDataset(torch.randn(4, 3), torch.zeros(4)))
    model = nn.Conv1d(1, 2, 3)
    learner = Learner(model, torch.optim.SGD(model.parameters(), lr=0.1), strategies=[NCM()])
    with pytest.raises(RetainError, match="needs features"):
        learner.strategies[0].after_experience(learner, _stream()[0])


def test_first_session_adaptation_trains_only_what_is_named_then_freezes():
    from retain.backbone import adapt_first, is_frozen

    stream = _stream()
    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh())
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    adapt_first(backbone, nn.Linear(16, 6), stream[0].train, epochs=2, trainable=("2.",))
    after = backbone.state_dict()
    assert is_frozen(backbone) and not backbone.training
    assert torch.equal(before["0.weight"], after["0.weight"])
    assert not torch.equal(before["2.weight"], after["2.weight"])
    with pytest.raises(RetainError, match="no backbone parameter matches"):
        adapt_first(backbone, nn.Linear(16, 6), stream[0].train, trainable=("lora",))


def test_a_backbone_named_on_the_command_line_is_loaded_frozen_or_refused_clearly():
    from retain.backbone import is_frozen, load_backbone

    net = load_backbone("torch.nn:Flatten")
    assert isinstance(net, nn.Flatten) and is_frozen(net)
    for spec, message in (("nosuch_module_xyz:f", "cannot load"), ("math:pi", "not an nn.Module"),
                          ("no-colon", "module:attribute")):
        with pytest.raises(RetainError, match=message):
            load_backbone(spec)


def test_state_keys_stay_those_old_checkpoints_hold():
    """The keys the heads have saved since they were added: a checkpoint written before the
    shared code moved to ``closed_form`` must still load."""
    x, y = _data()
    keys = {name: sorted(make().fit(x, y).state_dict()) for name, make in HEADS.items()}
    keys["ranpac"] = sorted(RanPAC(projection=16).fit(x, y).state_dict())  # ridge chosen
    assert keys["ncm"] == keys["ncm-cosine"] == ["counts", "hyperparameters", "sums"]
    assert keys["slda"] == ["counts", "gram", "hyperparameters", "sums"]
    assert keys["ranpac"] == ["counts", "dim", "gram", "gram_val", "hyperparameters", "n_val",
                              "prototypes", "prototypes_val", "rng"]
