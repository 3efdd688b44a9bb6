"""Flip rates and the stability gap from the command line: run table, JSON, report, store."""

import json

import pytest
from test_flips import _rows
from typer.testing import CliRunner

from retain.cli import app
from retain.errors import RetainError


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False,
                              env={"COLUMNS": "220"})


def test_run_with_eval_every_shows_flips_and_the_gap(tmp_path):
    out = tmp_path / "out"
    result = invoke("run", "--scenario", "split-digits", "--strategy", "replay:capacity=100",
                    "--epochs", "1", "--eval-every", "20", "--out", out)
    assert result.exit_code == 0, result.output
    for column in ("NFR", "PFR", "min-ACC", "WC-ACC"):
        assert column in result.stdout
    payload = json.loads((out / "results.json").read_text())["results"]["replay:capacity=100"]
    assert payload["eval_every"] == 20 and len(payload["curve"]) == len(payload["curve_steps"])
    assert 0 < payload["min_acc"] <= payload["average_accuracy"] + 0.2
    assert len(payload["flips_per_experience"]) == 5
    assert 0 < payload["negative_flip_rate"] < 1
    page = (out / "index.html").read_text()
    assert "gap-replay-capacity-100.png" in page and "Update regressions" in page
    assert (out / "gap-replay-capacity-100.png").stat().st_size > 0


def test_store_update_with_a_flip_limit_rejects_and_history_shows_the_rate(tmp_path):
    history = tmp_path / "history.csv"
    _rows({"low": [0] * 100, "high": [1] * 100, "middle": [0] * 100}, seed=1).to_csv(
        history, index=False)
    _rows({"low": [0] * 100, "high": [1] * 100, "middle": [1] * 200}, seed=2).to_csv(
        tmp_path / "new.csv", index=False)
    _rows({"low": [0] * 50, "high": [1] * 50, "middle": [0] * 50 + [1] * 50}, seed=3).to_csv(
        tmp_path / "holdout.csv", index=False)
    store = tmp_path / "store"
    assert invoke("init", "--store", store, "--data", history, "--label", "label",
                  "--strategy", "naive", "--lr", "0.01", "--epochs", "30", "--holdout",
                  "random").exit_code == 0
    rejected = invoke("update", "--store", store, "--data", tmp_path / "new.csv", "--holdout",
                      tmp_path / "holdout.csv", "--max-negative-flips", "0.1", "--json")
    assert rejected.exit_code == 1
    version = json.loads(rejected.stdout.strip().splitlines()[-1])
    assert version["status"] == "rejected"
    assert "negative flip rate" in version["reason"]
    assert version["metrics"]["max_negative_flips"] == 0.1
    table = invoke("history", "--store", store).stdout
    assert "NFR" in table and f"{version['metrics']['holdout_negative_flip_rate']:.4f}" in table
    with pytest.raises(RetainError, match=r"share of rows in \[0, 1\], got 2"):
        invoke("update", "--store", store, "--data", tmp_path / "new.csv",
               "--max-negative-flips", "2")
