"""Checkpoints written by retain 0.1.0 before the strategy redesign still load and resume.

``tests/data/checkpoints-0.1.0/`` was written by ``make.py`` there, run against the code
before strategies derived their hyper-parameters from the constructor and declared their
state: each folder is a learner after two experiences, and ``after.safetensors`` its weights
after a third.
"""

from pathlib import Path

import pytest
import safetensors.torch
import torch
from torch import nn
from torch.utils.data import TensorDataset

from retain.checkpoint import load_learner

OLD = Path(__file__).parent / "data" / "checkpoints-0.1.0"


def _data(seed):
    g = torch.Generator().manual_seed(seed)
    return TensorDataset(torch.randn(24, 6, generator=g), torch.randint(0, 3, (24,), generator=g))


@pytest.mark.parametrize("name", sorted(p.name for p in OLD.iterdir() if p.is_dir()))
def test_a_checkpoint_written_before_the_redesign_loads_and_resumes_exactly(name):
    model = None
    if name == "icarl":  # an nn.Sequential, passed in as for any model that is not built in
        model = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))
    learner = load_learner(OLD / name, model=model)
    assert [s.name for s in learner.strategies] == [name]
    learner.learn(_data(3), batch_size=8)
    expected = safetensors.torch.load_file(OLD / name / "after.safetensors")
    for key, value in learner.model.state_dict().items():
        torch.testing.assert_close(value, expected[key], rtol=0, atol=0)
