"""Distributed training on 2 gloo processes equals one process on the global batch.

One ``torchrun --nproc-per-node 2`` launch runs every case of tests/distributed_cases.py
(bounded in time, its process group killed on timeout); each test compares what the ranks
wrote with the same learner trained here in one process on batches twice as large.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import distributed_cases as cases
import numpy as np
import pytest
import torch

from retain import Learner

HERE = Path(__file__).parent
TOL = 1e-5


@pytest.fixture(scope="module")
def ranks(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ranks")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc-per-node", "2", str(HERE / "distributed_cases.py"), str(out)]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        log, _ = proc.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the launcher and both ranks
        proc.communicate()
        pytest.fail("the 2-rank run did not finish in 240 s")
    assert proc.returncode == 0, log.decode()[-3000:]
    return out


def load(out: Path, case: str) -> tuple:
    return tuple(torch.load(out / f"{case}.rank{r}.pt") for r in (0, 1))


def gap(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a)


@pytest.mark.parametrize("case", list(cases.WEIGHT_CASES))
def test_two_ranks_of_batch_b_train_as_one_process_of_batch_2b(ranks, case):
    rank0, rank1 = load(ranks, case)
    assert gap(rank0, rank1) == 0  # DDP keeps the ranks' weights identical
    spec = cases.WEIGHT_CASES[case]
    one = cases.weights(cases.train(cases.build(spec), 2 * cases.BATCH))
    assert gap(rank0, one) < TOL
    # and the comparison can fail: one process at the per-rank batch trains differently
    assert gap(rank0, cases.weights(cases.train(cases.build(spec), cases.BATCH))) > 1e-3


def test_a_dataset_that_is_not_tensors_is_sharded_the_same_way(ranks):
    rank0, rank1 = load(ranks, "dataset")
    assert gap(rank0, rank1) == 0
    # the same shuffled order as in-memory tensors (a one-process DataLoader draws another)
    one = cases.weights(cases.train(cases.build("naive"), 2 * cases.BATCH))
    assert gap(rank0, one) < TOL


@pytest.mark.parametrize("n", [2, 3, 8, 9, 16, 17, 23])
def test_every_row_goes_to_exactly_one_rank_and_every_rank_gets_rows(n):
    from retain.distributed import World, rank_batches

    def rank(r: int) -> World:
        world = World()
        world.size, world.rank = 2, r
        return world

    parts = [list(rank_batches((torch.arange(n),), 4, torch.Generator().manual_seed(1),
                               True, rank(r))) for r in (0, 1)]
    assert len(parts[0]) == len(parts[1])  # the same number of steps: nobody waits
    assert all(len(x) > 0 for part in parts for (x,) in part)
    rows = torch.cat([x for part in parts for (x,) in part])
    assert sorted(rows.tolist()) == list(range(n))  # nothing dropped, nothing repeated


@pytest.mark.parametrize("case", list(cases.MEMORY_CASES))
def test_replay_memories_are_one_memory_equal_to_the_single_process_one(ranks, case):
    rank0, rank1 = load(ranks, case)
    capacity = cases.strategy(cases.MEMORY_CASES[case]).buffer.capacity
    assert all(v.shape[0] == capacity for v in rank0["memory"].values())
    assert gap(rank0["memory"], rank1["memory"]) == 0  # replicated: the same rows
    one = cases.train(cases.build(cases.MEMORY_CASES[case]), 2 * cases.BATCH)
    mine = cases.memory(one)
    assert torch.equal(mine["x"], rank0["memory"]["x"])
    assert torch.equal(mine["y"], rank0["memory"]["y"])
    if "logits" in mine:  # DER's stored logits: computed by identical weights
        assert gap({"l": mine["logits"]}, {"l": rank0["memory"]["logits"]}) < TOL
    # the memory draws are one process's draws too: the weights agree
    assert gap(cases.weights(one), rank0["weights"]) < TOL


def test_agem_projected_gradient_is_identical_on_both_ranks(ranks):
    rank0, rank1 = load(ranks, "agem")
    assert len(rank0["grads"]) == len(rank1["grads"]) > 10
    for g0, g1 in zip(rank0["grads"], rank1["grads"], strict=True):
        assert all(torch.equal(a, b) for a, b in zip(g0, g1, strict=True))
    # the reference is the mean over both ranks' draws: one process drawing twice as many
    one = cases.train(cases.build("agem:capacity=20,sample_size=8"), 2 * cases.BATCH)
    assert gap(cases.weights(one), rank0["weights"]) < TOL


@pytest.mark.parametrize("case", ["gdumb", "icarl"])
def test_exemplar_memories_are_identical_on_both_ranks(ranks, case):
    rank0, rank1 = load(ranks, case)
    assert gap(rank0["memory"], rank1["memory"]) == 0
    assert gap(rank0["weights"], rank1["weights"]) == 0


def test_a_two_rank_checkpoint_resumes_bit_identically_and_loads_in_one_process(ranks):
    rank0, rank1 = load(ranks, "resume")
    assert gap(rank0["straight"], rank0["resumed"]) == 0
    assert gap(rank1["straight"], rank1["resumed"]) == 0
    spec = ["derpp:capacity=20", "ewc:lambda_=5"]
    alone = Learner.load(ranks / "checkpoint", model=cases.build(spec).model)
    assert alone.world.size == 1 and len(alone.strategies[0].buffer) == 20
    resumed = cases.weights(cases.train(alone, 2 * cases.BATCH, [1, 2]))
    assert gap(resumed, rank0["resumed"]) < TOL  # one process goes on as the two ranks did


def test_bad_configurations_get_clear_errors(ranks):
    rank0, rank1 = load(ranks, "errors")
    assert rank0 == rank1  # every rank raises the same error: none waits forever
    assert "ranks disagree" in rank0["hyperparameters"]
    assert "lambda_': 1.0" in rank0["hyperparameters"]
    assert "lambda_': 2.0" in rank0["hyperparameters"]
    assert "cannot train distributed" in rank0["strategy"]
    assert "2 ranks but the data only 1 samples" in rank0["world"]


def _launch(args: list[str], cwd: Path, timeout: int = 240, codes=(0,)) -> str:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc-per-node", "2", *args]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd,
                            start_new_session=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"{args} did not finish in {timeout} s")
    assert proc.returncode in codes, err.decode()[-3000:]
    return out.decode()


def test_torchrun_retain_run_reports_once_what_one_process_gets_at_twice_the_batch(tmp_path):
    import json

    from retain.cli.run import compare

    printed = _launch(["-m", "retain", "run", "--scenario", "split-digits", "--strategy",
                       "replay:capacity=100", "--batch-size", "10", "--json"], tmp_path)
    ranks = json.loads(printed)  # one JSON document: only rank 0 prints
    one = compare("split-digits", ["replay:capacity=100"], 1, 20, 0.03, "sgd", 0, quiet=True)
    got = ranks["results"]["replay:capacity=100"]["accuracy_matrix"]
    want = one["replay:capacity=100"].to_dict()["accuracy_matrix"]
    np.testing.assert_allclose(got, want, atol=1e-9)


def test_retain_update_on_a_store_runs_distributed(tmp_path):
    """2 ranks at the store's batch size record what one process records at twice that."""
    import json
    import shutil
    import sqlite3

    from test_store import day_frame, history_frame

    from retain.store.store import Store

    Store(tmp_path / "one").init(history_frame(7), label="demand", time="time",
                                 model_args={"hidden": (16,)}, epochs=2, batch_size=16)
    shutil.copytree(tmp_path / "one", tmp_path / "two")
    with sqlite3.connect(tmp_path / "one" / "registry.sqlite") as conn:  # one process: 2 x 16
        config = json.loads(conn.execute("SELECT value FROM meta WHERE key='config'").fetchone()[0])
        config["settings"]["batch_size"] = 32
        conn.execute("UPDATE meta SET value=? WHERE key='config'", (json.dumps(config),))
    day_frame(0).to_csv(tmp_path / "day0.csv", index=False)
    printed = _launch(["-m", "retain", "update", "--store", "two", "--data", "day0.csv",
                       "--json"], tmp_path, codes=(0, 1))  # promoted or rejected
    two = json.loads(printed)  # rank 0 alone prints
    one = Store(tmp_path / "one").update(tmp_path / "day0.csv")
    assert two["id"] == one.id == 2 and two["status"] == one.status
    for key in ("holdout_error", "holdout_error_before", "train_loss"):
        assert two["metrics"][key] == pytest.approx(one.metrics[key], rel=1e-4), key
    history = Store(tmp_path / "two").history()  # one version recorded, loadable here
    assert [v.id for v in history] == [1, 2]
    assert Store(tmp_path / "two").load(2).world.size == 1
