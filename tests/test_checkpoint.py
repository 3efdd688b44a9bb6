"""Checkpoints: exact round trips, exact resume in a new process, no pickle, clear errors."""

import hashlib
import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from retain import Learner, RetainError
from retain.checkpoint.format import MANIFEST, check_model, content_hash
from retain.checkpoint.recipes import recorded_model
from retain.checkpoint.serialize import flatten, unflatten
from retain.optim import HalfLifeLR, decaying_lr
from retain.store import load_learner, open_checkpoint, save_learner
from retain.strategies import EWC, STRATEGIES, LwF, OnlineEWC, Replay, make_strategy

ROOT = Path(__file__).resolve().parents[1]


def _data(seed: int, n: int = 48) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 20, generator=g)
    return TensorDataset(x, (x[:, :3].argmax(1) + seed) % 3)


def make_learner() -> Learner:
    """A learner whose resume exercises every kind of state: dropout (global RNG), Adam
    moments, a step scheduler, an EWC Fisher, a replay memory (numpy RNG) and an LwF teacher."""
    torch.manual_seed(0)
    np.random.seed(0)
    model = recorded_model("mlp", in_features=20, out_features=3, hidden=(16,), dropout=0.3)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    return Learner(model, opt, strategies=[EWC(lambda_=5.0, fisher="empirical"),
                                           Replay(capacity=40, batch_size=8), LwF()],
                   scheduler=torch.optim.lr_scheduler.StepLR(opt, step_size=5, gamma=0.5),
                   scheduler_interval="step", seed=3)


def train_steps(learner: Learner, start: int, stop: int) -> None:
    """Steps ``start..stop-1`` of a fixed schedule: single updates, then a whole experience."""
    for step in range(start, stop):
        if step == 12:
            learner.learn(_data(2), batch_size=16)
        else:
            x, y = _data(100 + step, n=8).tensors
            learner.update(x, y)


def digest(learner: Learner) -> str:
    """A hash of the learner's whole state (weights, optimizer, buffers, Fisher, RNGs)."""
    tensors: dict = {}
    skeleton = flatten(learner.state_dict(), tensors)
    h = hashlib.sha256(json.dumps(skeleton, sort_keys=True).encode())
    for key in sorted(tensors):
        h.update(key.encode() + tensors[key].contiguous().numpy().tobytes())
    return h.hexdigest()


@pytest.mark.slow  # starts Python processes (torch import)
def test_exact_resume_in_a_new_process(tmp_path):
    """N steps, save, load in a fresh interpreter, M more == N + M uninterrupted, bit for bit
    (with dropout, replay sampling, EWC and LwF all drawing on saved state)."""
    full = make_learner()
    full.learn(_data(1), batch_size=16)
    train_steps(full, 0, 13)
    expected = digest(full)

    first = make_learner()
    first.learn(_data(1), batch_size=16)
    train_steps(first, 0, 6)
    save_learner(first, tmp_path / "ckpt")
    script = (
        "import sys, torch; torch.set_num_threads(1); sys.path.insert(0, sys.argv[1])\n"
        "from test_checkpoint import train_steps, digest\n"
        "from retain.store import open_checkpoint\n"
        "ckpt = open_checkpoint(sys.argv[2])\n"
        "for restore in (True, False):\n"
        "    learner = ckpt.learner(restore_rng=restore)\n"
        "    train_steps(learner, 6, 13)\n"
        "    print(digest(learner))\n")
    out = subprocess.run([sys.executable, "-c", script, str(ROOT / "tests"),
                          str(tmp_path / "ckpt")], capture_output=True, text=True, check=True)
    resumed, without_rng = out.stdout.split()
    assert resumed == expected
    assert without_rng != expected  # the saved global RNG (dropout) is what makes it exact


def test_round_trip_restores_every_tensor_and_value(tmp_path):
    learner = make_learner()
    learner.learn(_data(1), batch_size=16)
    train_steps(learner, 0, 3)
    save_learner(learner, tmp_path / "c", normalization={"mean": np.arange(3.0), "n": 7})
    ckpt = open_checkpoint(tmp_path / "c")
    loaded = ckpt.learner()
    assert digest(loaded) == digest(learner)
    assert repr(loaded) == repr(learner)
    assert loaded.scheduler.state_dict() == learner.scheduler.state_dict()
    np.testing.assert_array_equal(ckpt.normalization["mean"], np.arange(3.0))
    x = _data(9).tensors[0]
    assert torch.equal(loaded.outputs(x), learner.outputs(x))
    files = sorted(p.name for p in (tmp_path / "c").iterdir())
    assert files == sorted([MANIFEST, "learner.safetensors", "model.safetensors",
                            "normalization.safetensors", "optimizer.safetensors",
                            "rng.safetensors", "strategies.safetensors"])


def test_online_ewc_class_balanced_replay_and_sgd_groups_round_trip(tmp_path):
    torch.manual_seed(1)
    model = recorded_model("mlp", in_features=20, out_features=3, hidden=(8,))
    body, head = list(model.layers[1].parameters()), list(model.layers[3].parameters())
    opt = torch.optim.SGD([{"params": body}, {"params": head, "lr": 0.5}], lr=0.1, momentum=0.9)
    learner = Learner(model, opt, strategies=[OnlineEWC(gamma=0.5),
                                              Replay(capacity=10, policy="class-balanced")])
    learner.learn(_data(1), batch_size=8)
    save_learner(learner, tmp_path / "c")
    loaded = load_learner(tmp_path / "c")
    assert [g["lr"] for g in loaded.optimizer.param_groups] == [0.1, 0.5]
    assert digest(loaded) == digest(learner)


def test_experience_balanced_replay_resumes_exactly(tmp_path):
    def fresh():
        torch.manual_seed(2)
        model = recorded_model("mlp", in_features=20, out_features=3, hidden=(8,))
        return Learner(model, torch.optim.SGD(model.parameters(), lr=0.1),
                       strategies=[Replay(capacity=12, policy="experience-balanced")])

    learner = fresh()
    learner.learn(_data(1), batch_size=8)
    save_learner(learner, tmp_path / "c")
    loaded = load_learner(tmp_path / "c")
    for each in (learner, loaded):  # a new experience shrinks the first one's share
        each.learn(_data(2), batch_size=8)
    assert digest(loaded) == digest(learner)
    buffer = learner.strategies[0].buffer
    assert [len(s) for s in buffer.share_slots] == [6, 6]
    assert torch.equal(loaded.strategies[0].buffer.contents()["x"], buffer.contents()["x"])


def test_flatten_keeps_structure_and_refuses_objects():
    tensors: dict = {}
    state = {"a": (1, 2.5, None), "b": {0: torch.ones(2), 1: [torch.zeros(1)]},
             "c": np.arange(4, dtype=np.uint32), "__tensor__": "not a tag", "d": np.int64(3)}
    skeleton = flatten(state, tensors)
    json.dumps(skeleton)
    assert sorted(tensors) == ["b/0", "b/1/0", "c"]
    back = unflatten(json.loads(json.dumps(skeleton)), tensors)
    assert back["a"] == (1, 2.5, None) and back["__tensor__"] == "not a tag" and back["d"] == 3
    assert torch.equal(back["b"][0], torch.ones(2)) and back["b"][1][0].shape == (1,)
    assert back["c"].dtype == np.uint32 and back["c"].tolist() == [0, 1, 2, 3]
    with pytest.raises(RetainError, match="cannot store a .*function at 'x/0'"):
        flatten({"x": [lambda: 0]}, {})


def test_loading_never_unpickles(tmp_path, monkeypatch):
    learner = make_learner()
    learner.learn(_data(1), batch_size=16)
    save_learner(learner, tmp_path / "c")

    def forbidden(*args, **kwargs):
        raise AssertionError("a checkpoint must never be unpickled")

    monkeypatch.setattr(torch, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(pickle, "load", forbidden)
    load_learner(tmp_path / "c")


@pytest.fixture()
def saved(tmp_path):
    learner = make_learner()
    learner.learn(_data(1), batch_size=16)
    return save_learner(learner, tmp_path / "ckpt")


def _snapshot(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_missing_file_is_named(saved):
    (saved / "strategies.safetensors").unlink()
    with pytest.raises(RetainError, match="strategies.safetensors is missing"):
        load_learner(saved)
    (saved / MANIFEST).unlink()
    with pytest.raises(RetainError, match="manifest.json is missing"):
        load_learner(saved)


def test_truncated_file_is_named(saved):
    data = (saved / "model.safetensors").read_bytes()
    (saved / "model.safetensors").write_bytes(data[:100])
    with pytest.raises(RetainError, match=r"model.safetensors is truncated: 100 bytes"):
        load_learner(saved)
    manifest = (saved / MANIFEST).read_bytes()
    (saved / MANIFEST).write_bytes(manifest[: len(manifest) // 2])
    with pytest.raises(RetainError, match="manifest.json is not valid JSON"):
        load_learner(saved)


def test_hash_mismatch_is_named(saved):
    file = saved / "optimizer.safetensors"
    data = bytearray(file.read_bytes())
    data[-1] ^= 0xFF
    file.write_bytes(bytes(data))
    with pytest.raises(RetainError, match="optimizer.safetensors is corrupt: its sha256"):
        load_learner(saved)


def test_edited_manifest_fails_its_content_hash(saved):
    manifest = json.loads((saved / MANIFEST).read_text())
    manifest["spec"]["strategies"][0]["hyperparameters"]["lambda_"] = 1e9
    (saved / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(RetainError, match="does not match its content hash"):
        load_learner(saved)


def test_newer_format_asks_to_upgrade(saved):
    manifest = json.loads((saved / MANIFEST).read_text())
    manifest["format_version"] = 99
    manifest["content_hash"] = content_hash(manifest)
    (saved / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(RetainError, match="format 99, newer than this retain reads.*upgrade"):
        load_learner(saved)


def test_not_a_checkpoint(tmp_path):
    with pytest.raises(RetainError, match="does not exist"):
        load_learner(tmp_path / "nothing")
    (tmp_path / "f").mkdir()
    (tmp_path / "f" / MANIFEST).write_text('{"format": "other"}')
    with pytest.raises(RetainError, match="not a retain checkpoint"):
        load_learner(tmp_path / "f")


def test_user_model_is_checked_name_by_name(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 8), nn.ReLU(), nn.Linear(8, 3))
    learner = Learner(model, torch.optim.SGD(model.parameters(), lr=0.1))
    learner.learn(_data(1), batch_size=16)
    save_learner(learner, tmp_path / "c")
    with pytest.raises(RetainError, match=r"custom model \(torch.nn.modules.container.Sequential"
                                          r"\).*model=my_model"):
        load_learner(tmp_path / "c")
    wrong = nn.Sequential(nn.Linear(20, 9), nn.ReLU(), nn.Linear(9, 3), nn.Linear(3, 3))
    with pytest.raises(RetainError) as info:
        load_learner(tmp_path / "c", model=wrong)
    message = str(info.value)
    assert "0.weight has shape (9, 20) in the model but (8, 20) in the checkpoint" in message
    assert "3.weight is not in the checkpoint" in message and "2.weight has shape (3, 9)" in message
    same = nn.Sequential(nn.Linear(20, 8), nn.ReLU(), nn.Linear(8, 3))
    loaded = load_learner(tmp_path / "c", model=same)
    assert torch.equal(loaded.model[0].weight, model[0].weight)


def test_check_model_names_missing_weights():
    with pytest.raises(RetainError, match="extra.weight is missing from the model"):
        check_model(nn.Linear(2, 2), {"weight": torch.zeros(2, 2), "bias": torch.zeros(2),
                                      "extra.weight": torch.zeros(1)})


def test_unrebuildable_scheduler_fails_at_save(tmp_path):
    model = nn.Linear(4, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    learner = Learner(model, opt, scheduler=torch.optim.lr_scheduler.LambdaLR(opt, lambda e: 1))
    with pytest.raises(RetainError, match="LambdaLR scheduler: its argument 'lr_lambda'"):
        save_learner(learner, tmp_path / "c")
    assert not (tmp_path / "c").exists()


def test_decaying_lr_is_saved_and_resumes_its_schedule(tmp_path):
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    learner = Learner(model, opt, scheduler=decaying_lr(opt, half_life=2, min_factor=0.3),
                      scheduler_interval="experience")
    data = TensorDataset(torch.randn(20, 4), torch.randint(0, 2, (20,)))
    for _ in range(3):
        learner.learn(data, batch_size=5)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5 ** 1.5)
    save_learner(learner, tmp_path / "c")
    twin = nn.Linear(4, 2)
    loaded = load_learner(tmp_path / "c", model=twin)
    assert isinstance(loaded.scheduler, HalfLifeLR) and loaded.scheduler.half_life == 2
    for resumed in (learner, loaded):
        resumed.learn(data, batch_size=5)
        resumed.learn(data, batch_size=5)
        # 0.5 ** (5 / 2) = 0.18 is below the floor
        assert resumed.optimizer.param_groups[0]["lr"] == pytest.approx(0.1 * 0.3)


def test_existing_checkpoint_is_not_overwritten_unless_asked(saved):
    before = _snapshot(saved)
    learner = load_learner(saved)
    train_steps(learner, 0, 2)
    with pytest.raises(RetainError, match="already exists"):
        save_learner(learner, saved)
    assert _snapshot(saved) == before
    save_learner(learner, saved, overwrite=True)
    assert digest(load_learner(saved)) == digest(learner)
    assert [p.name for p in saved.parent.iterdir()] == ["ckpt"]  # no temporaries left


def test_regression_learner_with_a_loss_argument(tmp_path):
    model = recorded_model("mlp", in_features=3, out_features=1, hidden=(4,))
    learner = Learner(model, torch.optim.SGD(model.parameters(), lr=0.1),
                      loss=nn.HuberLoss(delta=0.5))
    learner.learn(TensorDataset(torch.randn(16, 3), torch.randn(16)), batch_size=4)
    save_learner(learner, tmp_path / "c")
    loaded = load_learner(tmp_path / "c")
    assert isinstance(loaded.loss_fn, nn.HuberLoss) and loaded.loss_fn.delta == 0.5
    assert loaded.task_type == "regression"


def _sequential() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(20, 16), nn.ReLU(), nn.Linear(16, 3))


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_registered_strategy_round_trips_and_resumes(name, tmp_path):
    """Any strategy's state (memories, importances, teachers, RNGs) survives a save: the loaded
    learner equals the saved one and keeps training identically."""
    model = _sequential()
    learner = Learner(model, torch.optim.SGD(model.parameters(), lr=0.05),
                      strategies=[make_strategy(name)])
    learner.learn(_data(1), batch_size=8)
    learner.learn(_data(2), batch_size=8)
    save_learner(learner, tmp_path / "c")
    loaded = load_learner(tmp_path / "c", model=_sequential())
    assert digest(loaded) == digest(learner)
    for each in (learner, loaded):
        each.learn(_data(3), batch_size=8)
    assert digest(loaded) == digest(learner)
