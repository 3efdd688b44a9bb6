"""Classes that grow (retain.growth) and every catalogued model rebuilt from a checkpoint."""

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from retain import Learner, RetainError
from retain.checkpoint import load_learner, open_checkpoint, save_learner
from retain.models import MODELS
from retain.strategies import make_strategy


def blobs(classes, n=60, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.tensor(classes).repeat_interleave(n // len(classes))
    centres = torch.eye(6)[:, :4] * 3
    return TensorDataset(centres[y] + torch.randn(len(y), 4, generator=g), y)


def learner(strategies=("replay",), seed=0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))
    return Learner(model, torch.optim.Adam(model.parameters(), lr=0.01),
                   strategies=[make_strategy(s) for s in strategies], seed=seed)


@pytest.mark.parametrize("strategies", [("naive",), ("replay",), ("replay-stratified",),
                                        ("ewc",), ("online-ewc",), ("si",), ("mas",),
                                        ("agem",), ("er-ace",), ("lwf",), ("ewc", "replay")])
def test_a_learner_grows_new_classes_and_learns_them(strategies):
    learner_ = learner(strategies)
    learner_.learn(blobs([0, 1]), epochs=5, batch_size=10)
    x_old = blobs([0, 1], seed=1).tensors[0]
    before = learner_.model(x_old).detach()
    assert learner_.grow_classes(4) == "2"
    out = learner_.model(x_old).detach()
    assert out.shape == (len(x_old), 4)
    # the old rows are copied: the same outputs up to the matmul kernel's rounding, which
    # depends on the output width on some CPUs (MKL on AVX2: 1 ulp); a re-initialised row
    # would move them by ~1
    torch.testing.assert_close(out[:, :2], before, rtol=1e-6, atol=1e-6)
    state = learner_.optimizer.state[learner_.model[2].weight]  # the new parameter
    assert state["exp_avg"].shape == (4, 16) and not state["exp_avg"][2:].any()
    learner_.learn(blobs([2, 3]), epochs=5, batch_size=10)
    test = blobs([2, 3], seed=2)
    assert learner_.evaluate(test) > 0.6, "the new classes were not learned"


def test_growth_survives_a_checkpoint_and_resumes(tmp_path):
    learner_ = learner()
    learner_.learn(blobs([0, 1]), epochs=2, batch_size=10)
    learner_.grow_classes(3)
    learner_.learn(blobs([2]), epochs=1, batch_size=10)
    save_learner(learner_, tmp_path / "c")
    assert open_checkpoint(tmp_path / "c").manifest["format_version"] == 2  # grown recipe
    # an nn.Sequential is a custom model: the error says how to rebuild the grown layer
    with pytest.raises(RetainError, match="grown to 3 units"):
        load_learner(tmp_path / "c")
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))
    loaded = load_learner(tmp_path / "c", model=model)
    x = blobs([0, 1, 2]).tensors[0]
    assert torch.equal(loaded.predict(x), learner_.predict(x))


def test_a_catalogued_model_grows_and_rebuilds_without_model(tmp_path):
    model = MODELS["mlp"](in_features=4, out_features=2)
    learner_ = Learner(model, torch.optim.Adam(model.parameters()), strategies=[])
    learner_.learn(blobs([0, 1]), batch_size=10)
    learner_.grow_classes(4)
    save_learner(learner_, tmp_path / "c")
    loaded = load_learner(tmp_path / "c")
    x = blobs([0, 1, 2, 3]).tensors[0]
    assert torch.equal(loaded.model(x), learner_.model(x))


def test_strategies_whose_state_holds_old_outputs_refuse_to_grow():
    learner_ = learner(("der",))
    with pytest.raises(RetainError, match="'der' cannot learn new classes"):
        learner_.grow_classes(3)
    assert learner_.model[2].out_features == 2  # nothing changed


ARGS = {"mlp": {"in_features": 3, "out_features": 2},
        "vibration-cnn": {"features": "envelope", "n_bins": 32, "width": 4}}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_catalogued_model_rebuilds_from_its_checkpoint_without_model(name, tmp_path):
    args = ARGS.get(name, {"in_channels": 2, "lookback": 16, "horizon": 4, "hidden": 8}
                    if name.startswith("forecast-") and name != "forecast-cnn" else
                    {"in_channels": 2, "lookback": 16, "horizon": 4, "width": 4})
    torch.manual_seed(0)
    model = MODELS[name](**args)  # built directly, not through the recipe
    save_learner(Learner(model, torch.optim.Adam(model.parameters())), tmp_path / "c")
    loaded = load_learner(tmp_path / "c").model
    assert type(loaded) is type(model)
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


def test_a_custom_model_still_needs_model_and_is_told_so(tmp_path):
    model = nn.Sequential(nn.Linear(3, 2))
    save_learner(Learner(model, torch.optim.SGD(model.parameters(), lr=0.1)), tmp_path / "c")
    with pytest.raises(RetainError, match="custom model.*model=my_model"):
        load_learner(tmp_path / "c")
