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


@pytest.fixture(scope="session")
def serve_template(tmp_path_factory):
    """One small trained store for the serve tests (tests/serve_server.py); copy it."""
    from serve_server import make_store

    return make_store(tmp_path_factory.mktemp("serve-template") / "store")


@pytest.fixture
def serve_store(serve_template, tmp_path):
    """A fresh copy of the serve tests' store."""
    import shutil

    path = tmp_path / "store"
    shutil.copytree(serve_template, path)
    return path
