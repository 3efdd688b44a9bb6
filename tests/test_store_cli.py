"""The store's commands: in-process for the options, real processes for concurrency."""

import io
import json
import os
import shutil
import subprocess
import sys

import pandas as pd
import pytest
import safetensors.torch
from test_store import INIT, day_frame, history_frame, template  # noqa: F401 (fixture)
from typer.testing import CliRunner

from retain.cli import app
from retain.errors import RetainError
from retain.store.store import Store


def invoke(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False,
                              env={"COLUMNS": "200"})


@pytest.fixture()
def files(tmp_path):
    history_frame().to_csv(tmp_path / "history.csv", index=False)
    for day in range(3):
        day_frame(day).to_csv(tmp_path / f"day{day}.csv", index=False)
    bad = day_frame(3)
    bad["demand"] = 30.0
    bad.to_csv(tmp_path / "bad.csv", index=False)
    return tmp_path


def test_init_from_a_config_file_then_the_daily_commands(files):
    config = files / "store.yaml"
    config.write_text("label: demand\ntime: time\nstrategy: replay:capacity=200\nepochs: 3\n"
                      "model_args: {hidden: [16]}\n")
    store = files / "store"
    result = invoke("init", "--store", store, "--data", files / "history.csv", "--config",
                    config, "--model-arg", "dropout=0.1", "--batch-size", "16", "--json")
    assert result.exit_code == 0
    first = json.loads(result.stdout)
    assert first["id"] == 1 and first["status"] == "promoted" and first["strategy"] == "replay"
    learner = Store(store).load()
    assert learner.model.hidden == (16,) and learner.model.dropout == 0.1
    assert learner.strategies[0].buffer.capacity == 200

    assert invoke("update", "--store", store, "--data", files / "day0.csv").exit_code == 0
    rejected = invoke("update", "--store", store, "--data", files / "bad.csv", "--json")
    assert rejected.exit_code == 1 and json.loads(rejected.stdout)["status"] == "rejected"
    assert "version 3 rejected: the day's labels look wrong" in rejected.stderr
    assert "no better than chance" in rejected.stderr

    table = invoke("history", "--store", store).stdout
    assert "*2" in table and "rejected" in table and "first version" in table

    csv = invoke("predict", "--store", store, "--data", files / "day1.csv").stdout
    expected = Store(store).predict(files / "day1.csv")
    pd.testing.assert_frame_equal(pd.read_csv(io.StringIO(csv), parse_dates=["time"]),
                                  expected, check_dtype=False)

    assert invoke("rollback", "--store", store).exit_code == 0
    assert [v["current"] for v in json.loads(invoke("history", "--store", store,
                                                    "--json").stdout)] == [True, False, False]
    assert invoke("export", "--store", store, "--version", 2, "--out",
                  files / "m.safetensors").exit_code == 0
    weights = safetensors.torch.load_file(files / "m.safetensors")
    assert weights["layers.1.weight"].shape == (16, 4)


def test_bad_options_are_clear_errors(files):
    config = files / "bad.yaml"
    config.write_text("label: demand\nlayers: 3\n")
    with pytest.raises(RetainError, match=r"unknown keys in .*bad.yaml: \['layers'\]"):
        invoke("init", "--store", files / "s", "--data", files / "history.csv",
               "--config", config)
    with pytest.raises(RetainError, match="--model-arg 'hidden' must be key=value"):
        invoke("init", "--store", files / "s", "--data", files / "history.csv",
               "--model-arg", "hidden")
    with pytest.raises(RetainError, match="unknown strategy 'ewk'"):
        invoke("init", "--store", files / "s", "--data", files / "history.csv",
               "--strategy", "ewk")
    assert not (files / "s").exists()


def _retain(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "retain.cli", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "COLUMNS": "200"}, **kwargs)


@pytest.mark.slow  # starts Python processes (torch import)
def test_two_concurrent_update_processes_take_turns(template, files):  # noqa: F811
    """Both real `retain update` processes succeed, one after the other: the second learns on
    top of the first (its parent), so the writes never interleaved."""
    store = files / "store"
    shutil.copytree(template, store)
    runs = [_retain("update", "--store", store, "--data", files / f"day{d}.csv", "--json")
            for d in (0, 1)]
    missing = _retain("history", "--store", files / "nowhere")
    results = [run.communicate(timeout=600) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], results
    versions = sorted((json.loads(out) for out, _ in results), key=lambda v: v["id"])
    assert [(v["id"], v["parent"]) for v in versions] == [(2, 1), (3, 2)]
    assert [v.status for v in Store(store).history()] == ["promoted"] * 3
    _, err = missing.communicate(timeout=600)
    assert missing.returncode == 2
    assert err.strip().startswith("error:") and "is not a retain store" in err
    assert err.strip().count("\n") == 0  # one line, no traceback
