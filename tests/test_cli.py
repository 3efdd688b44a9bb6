"""The `retain` command: JSON output, reports, configs and one-line errors."""

import json
import os
import subprocess
import sys

import pytest

CLI = [sys.executable, "-m", "retain.cli"]


def _retain(*args, cwd=None):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # small models: one thread, no contention
    return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=cwd, timeout=300,
                          env=env)


def test_run_writes_json_results_and_report(tmp_path):
    out = tmp_path / "out"
    proc = _retain("run", "--scenario", "split-digits", "--strategy", "naive",
                   "--strategy", "replay:capacity=200", "--epochs", "2", "--lr", "0.05",
                   "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    payload = json.loads(proc.stdout)  # stdout is pure JSON; progress and table go to stderr
    naive = payload["results"]["naive"]
    replay = payload["results"]["replay:capacity=200"]
    assert len(naive["accuracy_matrix"]) == 5
    assert replay["average_accuracy"] > naive["average_accuracy"] + 0.2
    for name in ("results.json", "index.html", "curves.png", "matrix-naive.png"):
        assert (out / name).stat().st_size > 0
    assert "matrix-naive.png" in (out / "index.html").read_text()


def test_config_file_gives_the_same_keys(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("scenario: split-digits\nstrategy: [naive]\nepochs: 1\nbatch_size: 64\n")
    proc = _retain("run", "--config", str(config), "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["config"]["batch_size"] == 64


@pytest.mark.parametrize("args, message", [
    (["run", "--scenario", "nope"], "unknown scenario 'nope'"),
    (["run", "--scenario", "split-digits", "--strategy", "foo"], "unknown strategy 'foo'"),
    (["run", "--scenario", "split-digits", "--strategy", "ewc:lamda=1"],
     "has no hyper-parameter 'lamda'"),
    (["run", "--scenario", "missing.csv"], "missing.csv"),
    (["run", "--config", "nowhere.yaml"], "does not exist"),
])
def test_user_errors_are_one_line_without_traceback(args, message, tmp_path):
    proc = _retain(*args, cwd=tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert message in " ".join(proc.stderr.split())


def test_bad_config_keys_are_named(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("scenario: split-digits\nepoch: 3\n")
    proc = _retain("run", "--config", str(config))
    assert proc.returncode == 2 and "epoch" in proc.stderr
