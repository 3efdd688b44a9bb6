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

from retain.checkpoint import load_learner, save_learner

OLD = Path(__file__).parent / "data" / "checkpoints-0.1.0"


def _data(seed):
    g = torch.Generator().manual_seed(seed)
    return TensorDataset(torch.randn(24, 6, generator=g), torch.randint(0, 3, (24,), generator=g))


@pytest.mark.parametrize("name", sorted(p.name for p in OLD.iterdir() if p.is_dir()))
def test_a_checkpoint_written_before_the_redesign_loads_and_resumes_exactly(name, tmp_path):
    learner = _load(name)
    assert [s.name for s in learner.strategies] == [name]
    # saved again in today's format and loaded back, it resumes bit for bit as the old one does
    save_learner(learner, tmp_path / "now")
    again = _load(name, tmp_path / "now")
    learner.learn(_data(3), batch_size=8)
    again.learn(_data(3), batch_size=8)
    for (key, value), other in zip(learner.model.state_dict().items(),
                                   again.model.state_dict().values(), strict=True):
        torch.testing.assert_close(other, value, rtol=0, atol=0, msg=key)
    # and it matches the weights the old code reached on the machine that wrote them. Only
    # float32 rounding differs between CPUs (AVX-512 and AVX2 kernels sum in another order,
    # ~1e-8 here); a state restored wrongly moves them far more (measured: an emptied replay
    # memory by 1e-2, a lost EWC/SI/MAS penalty by 2e-4 to 6e-2).
    expected = safetensors.torch.load_file(OLD / name / "after.safetensors")
    for key, value in learner.model.state_dict().items():
        torch.testing.assert_close(value, expected[key], rtol=1e-5, atol=1e-6, msg=key)


def _load(name, path=None):
    model = None
    if name == "icarl":  # an nn.Sequential, passed in as for any model that is not built in
        model = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))
    return load_learner(path or OLD / name, model=model)
