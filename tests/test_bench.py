"""`retain bench`: grid expansion and validation, resumable runs, crash records, summaries."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from retain.bench import runner
from retain.bench.grid import expand
from retain.bench.reproduce import CELLS, markdown, reproduction_runs
from retain.bench.runner import read_records, run_grid
from retain.bench.summary import summarise, write_outputs
from retain.cli import app
from retain.cli.bench import parse_grid, split_specs
from retain.errors import RetainError

TINY = {"scenario": "split-digits", "experiences": 2, "epochs": 1, "batch_size": 32}


def test_grid_expands_strategies_grid_points_and_seeds():
    runs = expand({**TINY, "strategies": ["naive", "der:capacity=50"], "seeds": [0, 1, 2],
                   "grid": {"lr": [0.01, 0.1], "alpha": [0.2, 0.5]}})
    # naive has no alpha: 2 lr x 3 seeds; der: 2 lr x 2 alpha x 3 seeds (duplicates collapse)
    assert len({r["id"] for r in runs}) == 6 + 12
    der = [r for r in runs if r["strategy"][0][0] == "der"]
    assert {r["strategy"][0][1]["alpha"] for r in der} == {0.2, 0.5}
    assert all(r["strategy"][0][1]["capacity"] == 50 for r in der)
    assert {r["lr"] for r in runs} == {0.01, 0.1}
    dotted = expand({**TINY, "strategies": ["derpp+si"], "grid": {"derpp.alpha": [0.3]}})
    assert dotted[0]["strategy"] == [["derpp", {"alpha": 0.3}], ["si", {}]]
    assert expand({**TINY, "strategies": ["naive"]})[0]["id"] == \
        expand({**TINY, "strategies": ["naive"]})[0]["id"]  # stable ids: resumable


@pytest.mark.parametrize("config,message", [
    ({"strategies": ["nope"]}, "unknown strategy 'nope'"),
    ({"strategies": ["der:capacity=50,alphaa=1"]}, "has no hyper-parameter 'alphaa'"),
    ({"strategies": ["der:alpha=abc"]}, "der.alpha must be float"),
    ({"strategies": ["replay:capacity=1.5"]}, "replay.capacity must be int"),
    ({"strategies": ["naive"], "grid": {"bogus": [1]}}, "neither a run setting"),
    ({"strategies": ["naive"], "grid": {"der.bogus": [1]}}, "has no hyper-parameter 'bogus'"),
    ({"strategies": ["naive"], "lr": "fast"}, "'lr' must be float"),
    ({"strategies": ["naive"], "scenario": "nowhere"}, "unknown scenario"),
    ({"strategies": ["naive"], "colour": 1}, "unknown bench options"),
    ({}, "nothing to run"),
])
def test_bad_input_is_rejected_before_running(config, message):
    with pytest.raises(RetainError, match=message):
        expand({**TINY, **config})


def test_cli_splits_strategy_specs_and_grids():
    assert split_specs("naive,der:capacity=200,alpha=0.2,derpp") == \
        ["naive", "der:capacity=200,alpha=0.2", "derpp"]
    assert parse_grid(["lr=0.01,0.1", "der.alpha=0.5"]) == {"lr": [0.01, 0.1],
                                                            "der.alpha": [0.5]}
    with pytest.raises(RetainError, match="key=v1,v2"):
        parse_grid(["lr"])


def test_cli_refuses_a_large_grid_without_yes_and_writes_nothing(tmp_path):
    out = tmp_path / "bench"
    result = CliRunner().invoke(app, ["bench", "--scenario", "split-digits", "--strategies",
                                      "naive", "--seeds", "0,1,2", "--grid", "lr=0.1,0.2",
                                      "--max-runs", "5", "--out", str(out)])
    assert isinstance(result.exception, RetainError)
    assert "6 runs, more than the limit of 5" in str(result.exception)
    assert not out.exists()


def test_runs_resume_and_crashes_are_recorded(tmp_path, monkeypatch):
    runs = expand({**TINY, "strategies": ["naive", "replay:capacity=20"], "seeds": [0, 1]})
    real = runner._train
    bad = runs[1]["id"]

    def crashing(run):
        if run["id"] == bad:
            raise RuntimeError("boom")
        return real(run)

    monkeypatch.setattr(runner, "_train", crashing)
    written = run_grid(runs, tmp_path, workers=1)
    assert [r["status"] for r in written].count("error") == 1
    failed = next(r for r in written if r["status"] == "error")
    assert failed["id"] == bad and "RuntimeError: boom" in failed["error"]
    # resume: only the crashed run is tried again
    monkeypatch.setattr(runner, "_train", real)
    again = run_grid(runs, tmp_path, workers=1)
    assert [r["id"] for r in again] == [bad] and again[0]["status"] == "ok"
    assert run_grid(runs, tmp_path, workers=1) == []


def test_interrupted_grid_keeps_finished_runs(tmp_path, monkeypatch):
    runs = expand({**TINY, "strategies": ["naive"], "seeds": [0, 1, 2]})
    real, calls = runner.execute, []

    def interrupted(run):
        calls.append(run["id"])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(run)

    monkeypatch.setattr(runner, "execute", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_grid(runs, tmp_path, workers=1)
    with open(tmp_path / runner.RESULTS_FILE, "a") as f:
        f.write('{"id": "torn')  # a line cut short by a kill
    assert [r["id"] for r in read_records(tmp_path)] == [runs[0]["id"]]
    monkeypatch.setattr(runner, "execute", real)
    resumed = run_grid(runs, tmp_path, workers=1)
    assert [r["id"] for r in resumed] == [runs[1]["id"], runs[2]["id"]]


@pytest.mark.slow
def test_worker_processes_run_the_grid(tmp_path):
    runs = expand({**TINY, "strategies": ["naive"], "seeds": [0, 1]})
    records = run_grid(runs, tmp_path, workers=2)
    assert sorted(r["id"] for r in records) == sorted(r["id"] for r in runs)
    assert all(r["status"] == "ok" for r in records)


def test_joint_trains_once_on_all_experiences(tmp_path):
    runs = expand({**TINY, "strategies": ["naive", "joint"], "lr": 0.1, "epochs": 3})
    records = {r["run"]["strategy"][0][0]: r for r in run_grid(runs, tmp_path, workers=1)}
    joint = records["joint"]["result"]
    assert joint["samples_seen"] == records["naive"]["result"]["samples_seen"]
    assert joint["average_accuracy"] > records["naive"]["result"]["average_accuracy"] + 0.3


def _record(strategy, seed, acc):
    run = expand({**TINY, "strategies": [strategy], "seeds": [seed]})[0]
    matrix = [[acc, 0.0], [acc - 0.1, acc]]
    return {"id": run["id"], "run": run, "status": "ok", "wall_s": 2.0 + seed,
            "result": {"accuracy_matrix": matrix, "baseline": [0.1, 0.1],
                       "average_accuracy": acc, "forgetting": 0.1, "bwt": -0.1, "fwt": -0.1}}


def test_summary_is_mean_and_std_over_seeds(tmp_path):
    records = [_record("naive", s, a) for s, a in enumerate([0.5, 0.6, 0.7])]
    records.append(_record("si", 0, 0.4))
    rows = {r["strategy"]: r for r in summarise(records)}
    assert rows["naive"]["seeds"] == 3
    assert rows["naive"]["average_accuracy"] == pytest.approx(60.0)
    assert rows["naive"]["average_accuracy_std"] == pytest.approx(np.std([50, 60, 70], ddof=1))
    assert rows["naive"]["wall_s"] == pytest.approx(3.0)
    assert rows["si"]["average_accuracy_std"] == 0.0
    with open(tmp_path / runner.RESULTS_FILE, "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in records)
    write_outputs(tmp_path)
    for name in ("runs.csv", "runs.json", "summary.csv", "summary.json", "index.html",
                 "bars-split-digits.png", "curves-split-digits.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert "60.00 ± 10.00" in (tmp_path / "index.html").read_text()


def test_reproduction_preset_covers_the_paper_table():
    runs = reproduction_runs("buzzega2020", [0, 1, 2], ["seq-mnist"])
    assert len(runs) == 3 * sum(c.table == "seq-mnist" for c in CELLS)
    assert {r["batch_size"] for r in runs} == {10} and {r["scenario"] for r in runs} == \
        {"split-mnist"}
    perm = reproduction_runs("buzzega2020", [0], ["perm-mnist"])
    assert {(r["batch_size"], r["experiences"]) for r in perm} == {(128, 20)}
    text = markdown([], "retain bench --reproduce buzzega2020")
    assert text.count("not run") == len(CELLS)
    picked = reproduction_runs("buzzega2020", [0], ["seq-mnist"], ["SGD", "DER/200"])
    assert [r["strategy"][0][0] for r in picked] == ["naive", "der"]
    with pytest.raises(RetainError, match="unknown table"):
        reproduction_runs("buzzega2020", [0], ["cifar"])
    with pytest.raises(RetainError, match="unknown method"):
        reproduction_runs("buzzega2020", [0], None, ["DER/300"])
    # a method whose name holds a comma is one --methods entry
    from retain.cli.bench import split_methods

    names = split_methods("SGD,oEWC (Fisher on 1,024 samples per task)")
    assert names == ["SGD", "oEWC (Fisher on 1,024 samples per task)"]
    assert len(reproduction_runs("buzzega2020", [0], ["rot-mnist"], names)) == 2


def test_yaml_config_and_command_line_options_combine(tmp_path):
    from retain.cli.bench import build_config

    config = tmp_path / "grid.yaml"
    config.write_text("scenario: split-digits\nstrategies: [naive, 'der:capacity=50']\n"
                      "grid: {lr: [0.01, 0.1]}\nseeds: [0, 1]\n")
    cfg = build_config(config, {"seeds": [3], "epochs": 2, "lr": None})
    runs = expand(cfg)
    assert len(runs) == 4 and {r["seed"] for r in runs} == {3}
    assert {r["epochs"] for r in runs} == {2}
    config.write_text("strategies: [naive]\nlearning_rate: 0.1\n")
    with pytest.raises(RetainError, match="unknown keys"):
        build_config(config, {})
