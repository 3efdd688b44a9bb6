"""LoRA through peft on a tiny randomly initialised transformer and on a plain module: the
existing strategies train the adapters only, adapter checkpoints hold no frozen weight and
resume exactly, and a checkpoint is refused on another base."""

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

pytest.importorskip("peft")
transformers = pytest.importorskip("transformers")

from retain import Learner, RetainError  # noqa: E402
from retain.backbone import freeze  # noqa: E402
from retain.pretrained.checkpoint import load_adapters, read_base, save_adapters  # noqa: E402
from retain.pretrained.lora import Logits, add_lora, base_hash  # noqa: E402
from retain.strategies import make_strategy  # noqa: E402

VOCAB, LENGTH = 40, 12
STRATEGIES = {"replay": {"capacity": 30}, "ewc": {"lambda_": 10.0},
              "online-ewc": {"lambda_": 10.0}, "mas": {}, "lwf": {}, "derpp": {"capacity": 30}}


def _base(seed=0) -> nn.Module:
    torch.manual_seed(seed)
    config = transformers.BertConfig(
        vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=LENGTH, num_labels=6,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    return transformers.BertForSequenceClassification(config)


def _learner(strategy: str, seed=0) -> Learner:
    model = Logits(add_lora(_base(seed), ["query", "value"], r=2,
                            trainable_modules=["classifier"]))
    params = [p for p in model.parameters() if p.requires_grad]
    return Learner(model, torch.optim.Adam(params, lr=1e-2),
                   strategies=[make_strategy(strategy, **STRATEGIES[strategy])], seed=0)


def _task(t: int, n=24) -> TensorDataset:
    """Classes 2t and 2t+1: a sequence of class c holds the token c + 1 in random places."""
    g = torch.Generator().manual_seed(t)
    y = 2 * t + torch.arange(n) % 2
    x = torch.randint(10, VOCAB, (n, LENGTH), generator=g)
    x[:, ::3] = (y + 1).unsqueeze(1)
    return TensorDataset(x, y)


def _trainable(learner):
    return {n: p.detach().clone() for n, p in learner.model.named_parameters()
            if p.requires_grad}


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_three_tasks_on_adapters_save_only_adapters_and_resume_exactly(strategy, tmp_path):
    learner = _learner(strategy)
    frozen = {n: p.clone() for n, p in learner.model.named_parameters() if not p.requires_grad}
    for t in (0, 1):
        learner.learn(_task(t), batch_size=8)
    assert all(torch.equal(p, frozen[n]) for n, p in learner.model.named_parameters()
               if n in frozen)
    save_adapters(learner, tmp_path / "ckpt", base="tiny-bert (random, seed 0)")
    on_disk = sum(f.stat().st_size for f in (tmp_path / "ckpt").iterdir())
    frozen_bytes = sum(p.numel() * p.element_size() for p in frozen.values())
    trainable_bytes = sum(p.numel() * p.element_size() for p in _trainable(learner).values())
    # adapters, their optimizer moments, importances/anchors or a memory: never the base
    assert on_disk < 0.6 * frozen_bytes, (on_disk, frozen_bytes)
    names = set(__import__("safetensors.torch").torch.load_file(
        tmp_path / "ckpt" / "model.safetensors"))
    assert not names & set(frozen)
    assert trainable_bytes < 0.2 * frozen_bytes
    resumed = load_adapters(tmp_path / "ckpt", _learner(strategy))
    for each in (learner, resumed):
        each.learn(_task(2), batch_size=8)
    mine, theirs = _trainable(learner), _trainable(resumed)
    assert mine.keys() == theirs.keys()
    assert all(torch.equal(mine[k], theirs[k]) for k in mine)
    probe = torch.cat([_task(t).tensors[0] for t in range(3)])
    assert torch.equal(learner.outputs(probe), resumed.outputs(probe))


def test_importances_cover_the_adapters_only():
    learner = _learner("ewc")
    learner.learn(_task(0), batch_size=8)
    penalty = learner.strategies[0].penalty
    trainable = [p for p in learner.model.parameters() if p.requires_grad]
    assert [a.shape for a in penalty.A] == [p.shape for p in trainable]
    total = sum(p.numel() for p in learner.model.parameters())
    assert sum(a.numel() for a in penalty.A) < 0.2 * total


def test_a_checkpoint_is_refused_on_another_base_naming_both_hashes(tmp_path):
    learner = _learner("replay")
    learner.learn(_task(0), batch_size=8)
    save_adapters(learner, tmp_path / "ckpt", base="tiny-bert")
    other = _learner("replay", seed=1)
    before = _trainable(other)
    saved, here = read_base(tmp_path / "ckpt")["sha256"], base_hash(other.model)
    assert saved == base_hash(learner.model) == base_hash(freeze(Logits(_base(0)))) != here
    with pytest.raises(RetainError, match=f"{saved}.*{here}"):
        load_adapters(tmp_path / "ckpt", other)
    after = _trainable(other)
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_lora_on_a_plain_module_with_replay():
    torch.manual_seed(0)
    net = add_lora(nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 4)), ["0"], r=2,
                   trainable_modules=["2"])
    learner = Learner(net, torch.optim.SGD([p for p in net.parameters() if p.requires_grad],
                                           lr=0.1), strategies=[make_strategy("replay")])
    g = torch.Generator().manual_seed(0)
    x = torch.randn(32, 6, generator=g)
    learner.learn(TensorDataset(x, (x[:, 0] > 0).long()), batch_size=8)
    assert learner.strategies[0].buffer.size == 32
    with pytest.raises(RetainError, match="could not wrap"):
        add_lora(nn.Sequential(nn.Linear(6, 4)), ["nope"])
