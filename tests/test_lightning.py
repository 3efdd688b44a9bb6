"""retain.lightning: successive trainer.fit calls match Learner, and checkpoints keep the
strategies' state."""

import subprocess
import sys
import warnings

import lightning.pytorch as pl
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from retain import Learner, RetainError, datasets, scenarios
from retain.lightning import RetainModule
from retain.strategies import EWC, LwF, Naive, OnlineEWC, Replay, make_strategy

warnings.filterwarnings("ignore", message=".*(num_workers|does not have many workers|"
                        "GPU available|TPU available|LeafSpec).*")


class Experience(pl.LightningDataModule):
    def __init__(self, experience, batch_size=16):
        super().__init__()
        self.experience, self.batch_size = experience, batch_size
        self.task_label = experience.task_label

    def train_dataloader(self):
        return DataLoader(self.experience.train, batch_size=self.batch_size, shuffle=False)

    def test_dataloader(self):
        return DataLoader(self.experience.test, batch_size=256)


def _trainer(**kw):
    return pl.Trainer(max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False, **kw)


@pytest.fixture(scope="module")
def stream():
    train, test = datasets.digits()
    return scenarios.class_incremental(train, test, n_experiences=3)


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


def _pair(make):
    a, b = _net(), _net()
    return (Learner(a, torch.optim.SGD(a.parameters(), lr=0.05), strategies=make(), seed=0),
            RetainModule(b, torch.optim.SGD(b.parameters(), lr=0.05), strategies=make(),
                         seed=0))


@pytest.mark.parametrize("make", [lambda: [Naive()], lambda: [EWC(lambda_=10.0)],
                                  lambda: [Replay(capacity=60)]], ids=["naive", "ewc", "replay"])
def test_successive_fits_match_the_learner(stream, make):
    learner, module = _pair(make)
    for experience in stream:
        learner.learn(experience, epochs=1, batch_size=16, shuffle=False)
        _trainer().fit(module, datamodule=Experience(experience))
    for mine, theirs in zip(learner.model.parameters(), module.model.parameters(), strict=True):
        torch.testing.assert_close(theirs, mine, rtol=1e-5, atol=1e-6)
    assert module.learner.experiences_seen == 3
    assert module.learner.samples_seen == learner.samples_seen
    x = torch.cat([e.test.tensors[0] for e in stream])
    assert torch.equal(module.learner.predict(x), learner.predict(x))
    result = _trainer().test(module, datamodule=Experience(stream[0]), verbose=False)[0]
    assert result["test_accuracy"] == pytest.approx(learner.evaluate(stream[0].test))


ALL_FIVE = {"ewc": lambda: [EWC(lambda_=10.0)], "online-ewc": lambda: [OnlineEWC(lambda_=5.0)],
            "lwf": lambda: [LwF(alpha=0.5)], "replay": lambda: [Replay(capacity=40)],
            "derpp": lambda: [make_strategy("derpp", capacity=40)]}


@pytest.mark.parametrize("name", list(ALL_FIVE))
def test_a_checkpoint_brings_back_the_strategies_and_resumes_exactly(stream, name, tmp_path):
    make = ALL_FIVE[name]
    _, module = _pair(make)
    trainer = _trainer()
    trainer.fit(module, datamodule=Experience(stream[0]))
    path = tmp_path / "after-0.ckpt"
    trainer.save_checkpoint(path)
    saved = torch.load(path, weights_only=False)["retain"]
    assert [s["name"] for s in saved["strategies"]] == [s.name for s in module.learner.strategies]
    _, restored = _pair(make)
    restored.restore(path)
    for a, b in zip(module.learner.strategies, restored.learner.strategies, strict=True):
        _assert_same_state(a.state_dict(), b.state_dict())
    assert restored.learner.experiences_seen == 1
    for m in (module, restored):  # both go on to the next experience
        _trainer().fit(m, datamodule=Experience(stream[1]))
    for a, b in zip(module.model.parameters(), restored.model.parameters(), strict=True):
        assert torch.equal(a, b)


def _assert_same_state(a, b):
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            _assert_same_state(a[k], b[k])
    elif isinstance(a, list | tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _assert_same_state(x, y)
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b)
    else:
        assert a == b


def test_the_optimizer_steps_count_in_lightning(stream):
    _, module = _pair(lambda: [Replay(capacity=20)])
    trainer = _trainer()
    trainer.fit(module, datamodule=Experience(stream[0], batch_size=32))
    assert trainer.global_step == -(-len(stream[0].train) // 32)


def test_a_checkpoint_of_other_strategies_is_refused(stream, tmp_path):
    _, module = _pair(lambda: [Replay(capacity=20)])
    trainer = _trainer()
    trainer.fit(module, datamodule=Experience(stream[0]))
    trainer.save_checkpoint(tmp_path / "replay.ckpt")
    _, other = _pair(lambda: [EWC(lambda_=1.0)])
    before = [p.clone() for p in other.model.parameters()]
    with pytest.raises(RetainError, match="differ from this learner"):
        other.restore(tmp_path / "replay.ckpt")
    assert all(torch.equal(a, b) for a, b in zip(before, other.model.parameters(),
                                                 strict=True))
    with pytest.raises(RetainError, match="no retain state"):
        other.on_load_checkpoint({"state_dict": {}})


def test_missing_lightning_names_the_extra():
    code = ("import sys; sys.modules['lightning'] = None\n"
            "try:\n    import retain.lightning\nexcept ImportError as exc:\n    print(exc)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120).stdout
    assert "pip install 'retain[lightning]'" in out
