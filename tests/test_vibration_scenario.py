"""split_by and the vibration-machines scenarios: grouping, labels, errors, a quick run."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.data import TensorDataset

from retain import Learner
from retain.cli.run import JOINT_LABEL, compare
from retain.errors import RetainError
from retain.scenarios import split_by
from retain.scenarios.catalog import build_model, build_scenario, scenario_defaults
from retain.vibration import VibrationCNN, VibrationRecords, make_dataset
from retain.vibration.run_machines import N_PER_CLASS_ENV

torch.set_num_threads(1)


def _toy(n_per_cell: int = 4) -> TensorDataset:
    """Groups 7, 3, 5 (first appearance in that order) x labels 0..2; x[i] = i."""
    groups = np.repeat([7, 3, 5], 3 * n_per_cell)
    labels = np.tile(np.repeat([0, 1, 2], n_per_cell), 3)
    x = torch.arange(len(groups), dtype=torch.float32)[:, None]
    return TensorDataset(x, torch.from_numpy(labels), torch.from_numpy(groups))


# --------------------------------------------------------------------------- split_by


def test_split_by_column_orders_groups_and_splits_each_stratified() -> None:
    ds = _toy()
    stream = split_by(ds, key=2, test_fraction=0.25, seed=0)
    assert [e.name for e in stream] == ["7", "3", "5"]
    assert stream.info["groups"] == [7, 3, 5] and stream.n_classes == 3
    rows_seen = []
    for i, e in enumerate(stream):
        (xtr, ytr), (xte, yte) = e.train.tensors, e.test.tensors
        assert len(e.train.tensors) == 2  # the key column is not passed on as a task label
        assert torch.bincount(ytr).tolist() == [3, 3, 3]  # 4 per label: 1 test, 3 train
        assert torch.bincount(yte).tolist() == [1, 1, 1]
        assert e.classes == (0, 1, 2)
        rows = torch.cat([xtr, xte])[:, 0].long()
        assert set(rows.tolist()) == set(range(12 * i, 12 * i + 12))  # only this group's rows
        rows_seen += rows.tolist()
    assert sorted(rows_seen) == list(range(36))
    again = split_by(ds, key=2, seed=0)
    other = split_by(ds, key=2, seed=1)
    assert torch.equal(again[0].test.tensors[0], stream[0].test.tensors[0])
    assert not all(torch.equal(a.test.tensors[0], b.test.tensors[0]) for a, b in
                   zip(stream, other, strict=True))


def test_split_by_given_order_and_test_set() -> None:
    ds = _toy()
    stream = split_by(ds, key=2, test=_toy(1), order=[5, 7, 3])
    assert stream.info["groups"] == [5, 7, 3]
    assert len(stream[0].train) == 12 and len(stream[0].test) == 3
    assert stream[0].test.tensors[0][:, 0].tolist() == [6.0, 7.0, 8.0]  # group 5 of the test set


def test_split_by_pairs_number_group_label_pairs_in_stream_order() -> None:
    # group "b" first with labels {0, 1}, then group "a" with labels {0, 2}
    keys = np.array(["b"] * 4 + ["a"] * 4)
    y = torch.tensor([0, 1, 0, 1, 2, 0, 2, 0])
    ds = TensorDataset(torch.arange(8.0)[:, None], y)
    test = TensorDataset(torch.zeros(4, 1), torch.tensor([1, 0, 2, 0]))
    stream = split_by(ds, keys, test, test_key=np.array(["b", "b", "a", "a"]), label="pair")
    assert stream.info["pairs"] == [("b", 0), ("b", 1), ("a", 0), ("a", 2)]
    assert stream.n_classes == 4 and stream.name == "split by group (class-incremental)"
    assert stream[0].train.tensors[1].tolist() == [0, 1, 0, 1]
    assert stream[1].train.tensors[1].tolist() == [3, 2, 3, 2]
    assert stream[1].classes == (2, 3)
    assert stream[0].test.tensors[1].tolist() == [1, 0] and stream[1].test.tensors[1].tolist() == [
        3, 2]
    bad_test = TensorDataset(torch.zeros(1, 1), torch.tensor([2]))
    with pytest.raises(RetainError, match=r"pairs that training lacks: \[\('b', 2\)\]"):
        split_by(ds, keys, bad_test, test_key=np.array(["b"]), label="pair")


def test_split_by_dataframe_and_records() -> None:
    df = pd.DataFrame({"f1": np.arange(8.0), "f2": np.ones(8), "label": [0, 1] * 4,
                       "site": ["x"] * 4 + ["y"] * 4})
    stream = split_by(df, "site", test_fraction=0.5)
    assert [e.name for e in stream] == ["site=x", "site=y"]
    assert stream[0].train.tensors[0].shape == (2, 2)  # f1, f2: site and label are not inputs
    data = make_dataset(2, n_per_class=4, seed=0, length=256)
    x, y, ids = data.train.tensors
    rec = VibrationRecords(x.numpy(), y.numpy(), np.array(["m0", "m1"])[ids.numpy()],
                           ("m0", "m1"), ids.numpy(), ("normal", "inner_race", "outer_race",
                                                          "ball"))
    stream = split_by(rec, "machine", test_fraction=0.34)
    assert [e.name for e in stream] == ["machine=m0", "machine=m1"]
    assert stream[0].train.tensors[0].shape[1:] == (1, 256)


def test_split_by_errors_name_the_problem() -> None:
    ds = _toy()
    with pytest.raises(RetainError, match=r"column 3 is not a per-sample key.*0: \[36, 1\]"):
        split_by(ds, key=3)
    with pytest.raises(RetainError, match="no named columns"):
        split_by(ds, key="machine")
    with pytest.raises(RetainError, match=r"groups \[9\] in order have no samples"):
        split_by(ds, key=2, order=[7, 3, 5, 9])
    with pytest.raises(RetainError, match=r"order misses groups \[5\]"):
        split_by(ds, key=2, order=[7, 3])
    with pytest.raises(RetainError, match="label must be one of"):
        split_by(ds, key=2, label="task")
    with pytest.raises(RetainError, match="1 row"):  # a group too small to split
        split_by(TensorDataset(torch.zeros(3, 1), torch.zeros(3, dtype=torch.long)),
                 torch.tensor([0, 0, 1]))
    with pytest.raises(RetainError, match="pass test_key"):
        split_by(ds, ds.tensors[2], test=ds)
    with pytest.raises(RetainError, match=r"test has groups \[4\]"):
        split_by(ds, key=2, test=TensorDataset(torch.zeros(1, 1), torch.zeros(1).long(),
                                                torch.tensor([4])))
    with pytest.raises(RetainError, match="group 5 has no test samples"):
        split_by(ds, key=2, test=_toy(1), test_key=np.array([7, 3, 3] * 3))


def test_split_by_refuses_missing_keys_and_nan_inputs() -> None:
    df = pd.DataFrame({"s0": [0.0, 1.0, 2.0, 3.0], "label": [0, 1, 0, 1],
                       "machine_type": ["a", None, "a", "b"]})
    with pytest.raises(RetainError, match=r"no key column 'machine'; columns are: 's0', "
                                          r"'label', 'machine_type'"):
        split_by(df, "machine")
    with pytest.raises(RetainError, match=r"missing key values \(NaN/None\) in rows 1"):
        split_by(df, "machine_type")
    keys = torch.tensor([0.0, float("nan"), 1.0, 1.0])
    with pytest.raises(RetainError, match="rows 1;"):
        split_by(TensorDataset(torch.zeros(4, 1), torch.zeros(4).long()), keys)
    x = torch.zeros(4, 1, 8)
    x[2, 0, 3] = float("nan")
    with pytest.raises(RetainError, match=r"NaN/inf inputs in rows 2"):
        split_by(TensorDataset(x, torch.zeros(4).long()), torch.tensor([0, 0, 1, 1]))
    df = pd.DataFrame({"s0": [0.0, np.nan, 2.0, 3.0], "label": [0, 1, 0, 1],
                       "machine": ["a", "a", "b", "b"]})
    with pytest.raises(RetainError, match="NaN"):
        split_by(df, "machine")


# --------------------------------------------------------------------------- scenarios


@pytest.fixture
def quick(monkeypatch):
    monkeypatch.setenv(N_PER_CLASS_ENV, "32")


def test_vibration_scenarios_and_model_built_from_stream(quick) -> None:
    stream = build_scenario("vibration-machines", seed=0, n_experiences=3)
    assert [e.name for e in stream] == ["motor-6205", "fan-6203", "pump-6308"]
    assert stream.n_classes == 4 and all(e.classes == (0, 1, 2, 3) for e in stream)
    assert len(stream[0].train) == 4 * 24 and len(stream[0].test) == 4 * 8
    model = build_model(stream)
    assert isinstance(model, VibrationCNN) and model.features == "envelope"
    assert (model.length, model.n_classes, model.in_channels) == (2048, 4, 1)
    pairs = build_scenario("vibration-machines-class", seed=0, n_experiences=3)
    assert pairs.n_classes == 12 and [e.classes for e in pairs] == [
        (0, 1, 2, 3), (4, 5, 6, 7), (8, 9, 10, 11)]
    assert pairs.info["pairs"][5] == ("fan-6203", 1)
    assert build_model(pairs).n_classes == 12
    assert scenario_defaults("vibration-machines")["model"] == "vibration-cnn"
    assert scenario_defaults("split-digits") == {}


def test_quick_run_replay_forgets_less_than_naive(quick) -> None:
    d = scenario_defaults("vibration-machines")
    results = compare("vibration-machines", ["naive", "replay"], d["epochs"], d["batch_size"],
                      d["lr"], d["optimizer"], seed=0, experiences=3, model=None, quiet=True,
                      joint=True, strategy_defaults=d["strategy_defaults"])
    naive, replay, joint = results["naive"], results["replay"], results[JOINT_LABEL]
    R = naive.accuracy_matrix
    assert R[0, 0] > R[0, 2] + 0.3  # trained on type 1 only: type 3 is much worse
    assert naive.forgetting > 0.05  # 0.06 here; 0.1-0.4 in the full 5-type run
    assert replay.forgetting < naive.forgetting / 2
    # the upper bound: all types at once, the same number of sample presentations
    assert sum(joint.samples_seen) == sum(naive.samples_seen)
    assert np.allclose(joint.accuracy_matrix, joint.accuracy_matrix[0]) and joint.forgetting == 0


def test_wrong_signal_length_for_the_model_is_a_clear_error(quick) -> None:
    stream = build_scenario("vibration-machines", seed=0, n_experiences=1)
    model = VibrationCNN(length=1024, features="envelope")
    learner = Learner(model, torch.optim.Adam(model.parameters()))
    with pytest.raises(RetainError, match="model expects signals of length 1024, got 2048"):
        learner.run(stream)


# --------------------------------------------------------------------------- CLI


def _retain(*args, n_per_class: str = "16"):
    env = {**os.environ, "OMP_NUM_THREADS": "1", N_PER_CLASS_ENV: n_per_class}
    return subprocess.run([sys.executable, "-m", "retain.cli", *args], capture_output=True,
                          text=True, timeout=300, env=env)


def test_cli_quick_run_writes_report_with_physics_plots_and_joint(tmp_path) -> None:
    out = tmp_path / "out"
    proc = _retain("run", "--scenario", "vibration-machines", "--experiences", "2",
                   "--strategy", "naive", "--strategy", "ewc", "--epochs", "2", "--out",
                   str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    payload = json.loads(proc.stdout)
    assert set(payload["results"]) == {"naive", "ewc", JOINT_LABEL}
    assert payload["config"]["model"] == "vibration-cnn"
    assert payload["config"]["strategy_defaults"]["ewc"]["lambda_"] > 0
    html = (out / "index.html").read_text()
    for image in ("signals-motor-6205.png", "signals-fan-6203.png"):
        assert image in html and (out / image).stat().st_size > 10_000
    assert "joint (upper bound)" in html and "Trained on the first machine type only" in html


def test_scenario_bad_settings_are_clear_errors(monkeypatch) -> None:
    with pytest.raises(RetainError, match=r"1\.\.9 machine types \(--experiences\), got 12"):
        build_scenario("vibration-machines", n_experiences=12)
    monkeypatch.setenv(N_PER_CLASS_ENV, "two")
    with pytest.raises(RetainError, match="RETAIN_VIBRATION_N_PER_CLASS must be an integer"):
        build_scenario("vibration-machines-class", n_experiences=2)


def test_cli_model_that_does_not_fit_the_data_is_one_line(tmp_path) -> None:
    config = tmp_path / "run.yaml"
    config.write_text("scenario: split-digits\nmodel: vibration-cnn\n")
    proc = _retain("run", "--config", str(config))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    line = " ".join(proc.stderr.split())
    assert "error: VibrationCNN expects signals" in line and "got shape (540, 1, 8, 8)" in line
