"""Continual fine-tuning of a tiny randomly initialised causal LM with LoRA and replay, its
forgetting measured as the loss on earlier tasks (no download: the config is built here)."""

import math

import pytest
import torch

pytest.importorskip("peft")
transformers = pytest.importorskip("transformers")

from retain.pretrained.lm import LMRun, byte_sequences, lm_learner, run_lm  # noqa: E402
from retain.pretrained.lora import add_lora  # noqa: E402
from retain.strategies import Replay  # noqa: E402

TEXTS = ["the cat sat on the mat. " * 40, "0123456789 9876543210 " * 40,
         "ABBA ABBA BAAB BAAB " * 40]


def _tasks():
    return [(byte_sequences([t], 24), byte_sequences([t[5:]], 24)) for t in TEXTS]


def _learner(strategies):
    torch.manual_seed(0)
    config = transformers.LlamaConfig(vocab_size=256, hidden_size=32, intermediate_size=64,
                                      num_hidden_layers=2, num_attention_heads=2,
                                      num_key_value_heads=2, max_position_embeddings=32)
    model = add_lora(transformers.LlamaForCausalLM(config), ["q_proj", "v_proj"], r=4,
                     trainable_modules=["lm_head"])
    trainable = [p for p in model.parameters() if p.requires_grad]
    return lm_learner(model, torch.optim.Adam(trainable, lr=3e-3), strategies)


def test_lora_and_replay_learn_three_text_tasks_and_measure_forgetting():
    class Collect:
        def __init__(self):
            self.scalars, self.tables = {}, []

        def log_scalars(self, scalars, step):
            self.scalars.update({(step, k): v for k, v in scalars.items()})

        def log_table(self, name, header, rows):
            self.tables.append((name, header, rows))

        def flush(self):
            pass

    log = Collect()
    learner = _learner([Replay(capacity=20)])
    run = run_lm(learner, _tasks(), epochs=2, batch_size=8, loggers=[log])
    assert len(run.loss) == 3 and all(len(row) == 3 for row in run.loss)
    for j in range(3):  # each task's loss fell when it was learned
        assert run.loss[j][j] < run.before[j] - 0.5
    assert run.forgetting == pytest.approx(
        ((run.loss[2][0] - run.loss[0][0]) + (run.loss[2][1] - run.loss[1][1])) / 2)
    assert run.perplexity[1][1] == pytest.approx(math.exp(run.loss[1][1]))
    assert log.scalars[(2, "loss/0")] == run.loss[2][0]
    assert log.tables[0][2][1][1:] == run.loss[1]
    assert learner.strategies[0].buffer.size == 20


def test_forgetting_of_a_hand_made_matrix():
    run = LMRun([[1.0, 5.0], [2.0, 1.5]], [5.0, 5.0])
    assert run.forgetting == 1.0
