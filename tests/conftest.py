"""Shared fixtures: deterministic seeds and one thread, so tests are fast and repeatable."""

import random

import numpy as np
import pytest
import torch

# tests/data holds fixtures (and the script that wrote them with an older retain), not tests
collect_ignore_glob = ["data/*"]


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    np.random.seed(0)
    random.seed(0)
    torch.set_num_threads(1)
    yield
