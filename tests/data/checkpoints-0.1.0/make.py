"""Writes the 0.1.0 checkpoints of tests/test_old_checkpoints.py; run with the 0.1.0 sources
(commit b31bf9e): ``PYTHONPATH=OLD/src python make.py OUT``. Kept for the record."""
# ruff: noqa: I001  (imports the 0.1.0 layout, which is no longer first-party)

import sys

import safetensors.torch
import torch
from torch.utils.data import TensorDataset

from retain import Learner
from retain.store import save_learner  # registers divergence-guard in 0.1.0
from retain.store.specs import build_model
from retain.strategies import STRATEGIES, make_strategy

out = sys.argv[1]


def data(seed):
    g = torch.Generator().manual_seed(seed)
    return TensorDataset(torch.randn(24, 6, generator=g), torch.randint(0, 3, (24,), generator=g))


for name in sorted(STRATEGIES):
    torch.manual_seed(0)
    if name == "icarl":  # needs an nn.Sequential whose last layer is the classifier
        model = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3))
    else:
        model = build_model("mlp", in_features=6, out_features=3, hidden=(5,))
    params = {"replay": {"update": "experience", "capacity": 20}}.get(name, {})
    learner = Learner(model, torch.optim.SGD(model.parameters(), lr=0.05),
                      strategies=[make_strategy(name, **params)])
    learner.learn(data(1), batch_size=8)
    learner.learn(data(2), batch_size=8)
    save_learner(learner, f"{out}/{name}")
    learner.learn(data(3), batch_size=8)
    safetensors.torch.save_file({k: v.contiguous() for k, v in learner.model.state_dict().items()},
                                f"{out}/{name}/after.safetensors")
