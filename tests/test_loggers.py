"""Loggers write real TensorBoard event files, MLflow runs and CSV files, read back here with
the libraries themselves."""

import csv
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

from retain import Learner, RetainError, datasets, scenarios
from retain.loggers import CSVLogger, Logger, make_loggers, parse_kinds
from retain.strategies import Replay


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    """One run on split digits logged to all three, with the curve every 20 steps."""
    folder = tmp_path_factory.mktemp("logs")
    train, test = datasets.digits()
    stream = scenarios.class_incremental(train, test, n_experiences=3)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    learner = Learner(model, torch.optim.SGD(model.parameters(), lr=0.05),
                      strategies=[Replay(capacity=50)])
    loggers = make_loggers("tensorboard,mlflow,csv", folder, "replay")
    for log in loggers:
        log.log_params({"strategy": "replay", "lr": 0.05})
    result = learner.run(stream, batch_size=10, eval_every=20, loggers=loggers)
    for log in loggers:
        log.close()
    return folder, result, loggers


def _csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_csv_files_hold_every_experience_the_summary_and_tables(logged):
    folder, result, _ = logged
    rows = _csv(folder / "csv" / "replay" / "scalars.csv")
    row0 = [r for r in rows if r["name"] == "accuracy/experience_0"]
    assert [int(r["step"]) for r in row0] == [0, 1, 2]
    np.testing.assert_allclose([float(r["value"]) for r in row0], result.accuracy_matrix[:, 0])
    nfr = [float(r["value"]) for r in rows if r["name"] == "flips/negative_flip_rate"]
    np.testing.assert_allclose(nfr, [f["negative_flip_rate"] for f in result.flips])
    curve = [r for r in rows if r["name"] == "curve/accuracy/experience_0"]
    assert [int(r["step"]) for r in curve] == result.curve_steps
    summary = {r["name"]: float(r["value"]) for r in rows if r["name"].startswith("summary/")}
    assert summary["summary/average_accuracy"] == pytest.approx(result.average_accuracy)
    assert summary["summary/min_acc"] == pytest.approx(result.min_acc)
    matrix = _csv(folder / "csv" / "replay" / "accuracy_matrix.csv")
    assert len(matrix) == 3 and float(matrix[2][result.experience_names[1]]) == pytest.approx(
        result.accuracy_matrix[2, 1], abs=1e-6)
    params = {r["name"]: r["value"] for r in _csv(folder / "csv" / "replay" / "params.csv")}
    assert params == {"lr": "0.05", "strategy": "replay"}


def test_tensorboard_event_files_hold_the_scalars(logged):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    folder, result, _ = logged
    events = EventAccumulator(str(folder / "tensorboard" / "replay"))
    events.Reload()
    acc = events.Scalars("accuracy/experience_1")
    assert [e.step for e in acc] == [0, 1, 2]
    np.testing.assert_allclose([e.value for e in acc], result.accuracy_matrix[:, 1], rtol=1e-6)
    curve = events.Scalars("curve/accuracy/experience_0")
    assert [e.step for e in curve] == result.curve_steps
    assert events.Scalars("summary/wc_acc")[0].value == pytest.approx(result.wc_acc, rel=1e-6)


def test_the_mlflow_run_holds_metrics_params_and_tables(logged):
    import mlflow

    folder, result, loggers = logged
    run_id = next(log.run_id for log in loggers if hasattr(log, "run_id"))
    client = mlflow.MlflowClient(tracking_uri=(folder / "mlruns").resolve().as_uri())
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == "replay"
    assert run.data.params == {"strategy": '"replay"', "lr": "0.05"}
    history = client.get_metric_history(run_id, "flips/positive_flip_rate")
    assert sorted(m.step for m in history) == [0, 1, 2]
    assert run.data.metrics["summary/negative_flip_rate"] == pytest.approx(
        result.negative_flip_rate)
    artifacts = [a.path for a in client.list_artifacts(run_id, "tables")]
    assert artifacts == ["tables/accuracy_matrix.csv", "tables/flips.csv"]


def test_logging_changes_nothing_in_training(logged):
    _, result, _ = logged
    train, test = datasets.digits()
    stream = scenarios.class_incremental(train, test, n_experiences=3)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    learner = Learner(model, torch.optim.SGD(model.parameters(), lr=0.05),
                      strategies=[Replay(capacity=50)])
    np.testing.assert_array_equal(learner.run(stream, batch_size=10).accuracy_matrix,
                                  result.accuracy_matrix)


def test_nothing_is_written_before_a_flush(tmp_path):
    log = CSVLogger(tmp_path)
    log.log_scalars({"a": 1.0, "nan": float("nan"), "none": None}, step=0)
    assert not (tmp_path / "scalars.csv").exists()
    log.close()
    assert [r["name"] for r in _csv(tmp_path / "scalars.csv")] == ["a"]
    with pytest.raises(RetainError, match="closed"):
        log.log_scalars({"a": 2.0}, step=1)


def test_bad_logger_names_and_objects_are_refused(tmp_path):
    with pytest.raises(RetainError, match="unknown logger wandb; choose from"):
        parse_kinds("csv,wandb")
    train, test = datasets.digits()
    stream = scenarios.class_incremental(train, test, n_experiences=2)
    model = nn.Linear(64, 10)
    learner = Learner(nn.Sequential(nn.Flatten(), model),
                      torch.optim.SGD(model.parameters(), lr=0.05))
    with pytest.raises(RetainError, match="is not a logger"):
        learner.run(stream, loggers=["csv"])
    with pytest.raises(RetainError, match="no file"):
        Logger().log_figure("plot", tmp_path / "missing.png")


def test_a_missing_library_names_the_extra(tmp_path):
    """With tensorboard and mlflow hidden, the loggers say which extra brings them."""
    code = (
        "import sys; sys.modules['tensorboard'] = None; sys.modules['mlflow'] = None\n"
        "from retain.loggers import make_loggers\n"
        "for kind in ('tensorboard', 'mlflow'):\n"
        "    try:\n"
        f"        make_loggers(kind, {str(tmp_path)!r}, 'r')\n"
        "    except ImportError as exc:\n"
        "        print(exc)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120).stdout
    assert out.count("pip install 'retain[log]'") == 2
    assert "'tensorboard'" in out and "'mlflow'" in out


def test_importing_retain_loads_no_logging_library():
    code = ("import sys, retain, retain.loggers\n"
            "print(sorted(m for m in ('tensorboard', 'mlflow') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.stdout.strip() == "[]", out.stderr


def test_retain_run_logs_each_strategy_with_the_reports_plots(tmp_path):
    from typer.testing import CliRunner

    from retain.cli import app

    result = CliRunner().invoke(app, [
        "run", "--scenario", "split-digits", "--strategy", "naive", "--strategy", "replay",
        "--log", "csv,tensorboard", "--log-dir", str(tmp_path / "logs"),
        "--out", str(tmp_path / "out")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    for name in ("naive", "replay"):
        folder = tmp_path / "logs" / "csv" / name
        names = {r["name"] for r in _csv(folder / "scalars.csv")}
        assert {"accuracy/experience_4", "flips/negative_flip_rate"} <= names
        assert (folder / f"matrix-{name}.png").stat().st_size > 0
        params = {r["name"]: r["value"] for r in _csv(folder / "params.csv")}
        assert params["strategy"] == name
        assert any((tmp_path / "logs" / "tensorboard" / name).glob("events.out.tfevents.*"))


def test_store_updates_log_their_measures_at_the_version_id(tmp_path):
    from test_flips import _rows

    from retain.store import Store

    store = Store(tmp_path / "store")
    store.init(_rows({"low": [0] * 60, "high": [1] * 60, "middle": [0] * 60}, seed=1),
               label="label", strategies=["replay"], epochs=5, holdout="random")
    with CSVLogger(tmp_path / "log") as log:
        for seed in (2, 3):
            version = store.update(_rows({"low": [0] * 40, "high": [1] * 40}, seed=seed),
                                   loggers=[log])
    rows = _csv(tmp_path / "log" / "scalars.csv")
    nfr = {int(r["step"]): float(r["value"]) for r in rows
           if r["name"] == "holdout_negative_flip_rate"}
    assert sorted(nfr) == [2, 3]
    assert nfr[3] == pytest.approx(version.metrics["holdout_negative_flip_rate"])
    decision = _csv(tmp_path / "log" / "version_3.csv")[0]
    assert decision["status"] == version.status and decision["parent"] == "2"


def test_a_bench_grid_logs_each_run_and_the_summary(tmp_path):
    from typer.testing import CliRunner

    from retain.cli import app

    result = CliRunner().invoke(app, [
        "bench", "--scenario", "split-digits", "--strategies", "naive,replay:capacity=50",
        "--seeds", "0", "--workers", "1", "--out", str(tmp_path / "grid"),
        "--log", "csv", "--log-dir", str(tmp_path / "logs")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    folder = tmp_path / "logs" / "csv" / "bench-grid"
    rows = _csv(folder / "scalars.csv")
    names = {r["name"] for r in rows}
    assert {"split-digits/naive/seed0/average_accuracy",
            "split-digits/replay(capacity=50)/seed0/negative_flip_rate"} <= names
    summary = _csv(folder / "summary.csv")
    assert [r["strategy"] for r in summary] == ["naive", "replay(capacity=50)"]
    assert list(folder.glob("bars-*.png"))
