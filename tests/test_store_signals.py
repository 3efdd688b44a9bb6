"""Signals in the store: windows of recordings (.npz) learned by the vibration CNN, a new
fault type learned by an update, predictions per window and per recording."""

import numpy as np
import pandas as pd
import pytest

from retain import RetainError
from retain.store.store import Store

FREQ = {"normal": 0.0, "inner": 0.11, "outer": 0.23}  # cycles per sample of the fault's ring


def recordings(path, faults, per=3, windows=12, length=256, seed=0):
    """Windows of simulated recordings: a shaft tone plus, for a fault, bursts ringing at
    the fault's frequency; ``per`` recordings per fault."""
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    x, label, recording = [], [], []
    for fault in faults:
        for r in range(per):
            for _ in range(windows):
                signal = np.sin(2 * np.pi * 0.01 * t + rng.uniform(0, 6))
                if FREQ[fault]:
                    bursts = (np.sin(2 * np.pi * 0.02 * t + rng.uniform(0, 6)) > 0.6)
                    signal += 1.5 * bursts * np.sin(2 * np.pi * FREQ[fault] * t)
                x.append(signal + rng.normal(0, 0.3, length))
                label.append(fault)
                recording.append(f"{fault}-{seed}-{r}")
    np.savez(path, x=np.array(x, dtype=np.float32)[:, None, :], label=np.array(label),
             recording=np.array(recording))
    return path


SETTINGS = {"model": "vibration-cnn", "model_args": {"width": 4, "dropout": 0.0},
            "strategies": ("replay-stratified",), "holdout": "random", "epochs": 15,
            "batch_size": 16, "lr": 0.005, "min_holdout": 5}


def test_windows_init_update_with_a_new_fault_and_vote_per_recording(tmp_path):
    store = Store(tmp_path / "store")
    first = store.init(recordings(tmp_path / "m1.npz", ["normal", "inner"]), **SETTINGS)
    assert first.metrics["holdout_error"] < 0.2
    assert type(store.load().model).__name__ == "VibrationCNN"  # rebuilt from its recipe
    second = store.update(recordings(tmp_path / "m2.npz", ["normal", "inner", "outer"],
                                     seed=1))
    assert second.status == "promoted" and second.metrics["new_classes"] == [2], second.reason
    test = recordings(tmp_path / "test.npz", ["normal", "inner", "outer"], per=1, seed=9)
    windows = store.predict(test)
    assert list(windows.columns) == ["recording", "prediction"] and len(windows) == 36
    truth = np.repeat(["normal", "inner", "outer"], 12)
    assert (windows["prediction"].to_numpy() == truth).mean() > 0.8
    votes = store.predict(test, per="recording")
    assert votes["prediction"].tolist() == ["normal", "inner", "outer"]
    assert set(votes.columns) == {"recording", "prediction", "share", "windows"}
    assert isinstance(votes, pd.DataFrame) and (votes["windows"] == 12).all()


def test_windows_of_another_shape_or_a_table_are_refused_by_name(tmp_path):
    store = Store(tmp_path / "store")
    store.init(recordings(tmp_path / "m1.npz", ["normal", "inner"], per=2), **{
        **SETTINGS, "epochs": 1})
    with pytest.raises(RetainError, match=r"windows of shape \(1, 128\).*\[1, 256\]"):
        store.update(recordings(tmp_path / "short.npz", ["normal"], length=128))
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.full((3, 1, 256), np.nan), label=np.array(["normal"] * 3))
    with pytest.raises(RetainError, match="NaN or inf"):
        store.update(bad)
    table = tmp_path / "rows.csv"
    pd.DataFrame({"a": [1.0, 2.0], "label": ["normal", "inner"]}).to_csv(table, index=False)
    with pytest.raises(RetainError, match="lacks column|unexpected column|windows"):
        store.update(table)


def test_the_command_line_takes_a_folder_of_recordings(tmp_path):
    """``retain init|update|predict --data FOLDER`` with small CWRU-like .mat files: a new
    fault's file in the update's folder becomes a new class."""
    from test_recordings import write_cwru
    from typer.testing import CliRunner

    from retain.cli import app

    first, second = tmp_path / "machine1", tmp_path / "machine2"
    for folder, files in ((first, {209: 75, 222: 40}), (second, {209: 75, 222: 40, 234: 23})):
        folder.mkdir()
        for number, period in files.items():
            write_cwru(folder, number, n=40 * 256, period=period, seed=number)
    runner = CliRunner()
    store = str(tmp_path / "store")
    common = ["--store", store]
    init = runner.invoke(app, ["init", *common, "--data", str(first), "--model", "vibration-cnn",
                               "--model-arg", "width=4", "--model-arg", "length=2048",
                               "--strategy", "replay-stratified", "--holdout", "random",
                               # 10 epochs learned the new fault's 5 windows or not depending
                               # on which rows the memory drew: 15 learn it either way
                               "--epochs", "15", "--lr", "0.005", "--min-holdout", "3"])
    assert init.exit_code == 0, init.output
    update = runner.invoke(app, ["update", *common, "--data", str(second), "--json"])
    assert update.exit_code == 0, update.output
    votes = runner.invoke(app, ["predict", *common, "--data", str(second), "--per",
                                "recording"])
    assert votes.exit_code == 0, votes.output
    lines = votes.stdout.strip().splitlines()
    assert lines[0] == "recording,prediction,share,windows"
    assert [line.split(",")[:2] for line in lines[1:]] == [
        ["209.mat", "inner_race"], ["222.mat", "ball"], ["234.mat", "outer_race"]]


def test_a_parquet_file_with_an_array_column_is_windows(tmp_path):
    """The same windows as a .npz and as Parquet (column ``x``: one array per row, [time] or
    [channels][time]) are learned and predicted alike; ragged arrays are refused by name."""
    npz = recordings(tmp_path / "m1.npz", ["normal", "inner"], per=2)
    with np.load(npz) as f:
        x, label, recording = f["x"], f["label"], f["recording"]
    flat, nested = tmp_path / "flat.parquet", tmp_path / "nested.parquet"
    pd.DataFrame({"x": list(x[:, 0]), "label": label, "recording": recording}).to_parquet(flat)
    pd.DataFrame({"x": [list(w) for w in x], "label": label,
                  "recording": recording}).to_parquet(nested)
    quick = {**SETTINGS, "epochs": 2}
    a, b = Store(tmp_path / "a"), Store(tmp_path / "b")
    a.init(npz, **quick)
    b.init(flat, **quick)
    assert a.history()[0].data_hash == b.history()[0].data_hash  # the same windows and labels
    assert a.predict(nested, per="recording").equals(b.predict(npz, per="recording"))
    ragged = tmp_path / "ragged.parquet"
    pd.DataFrame({"x": [x[0, 0], x[1, 0, :100]], "label": label[:2]}).to_parquet(ragged)
    with pytest.raises(RetainError, match="arrays of column 'x' must all have one shape"):
        a.update(ragged)


def test_the_recent_holdout_of_windows_is_the_end_of_each_recording(tmp_path):
    """``holdout="recent"`` on windows of recordings keeps the last windows of every
    recording out (a time cut per recording), not the last recordings of the file — which
    would hold out one fault type only."""
    from retain.store.tables import Table

    path = recordings(tmp_path / "m1.npz", ["normal", "inner"], per=2)
    with np.load(path) as f:
        groups = f["recording"]
    index = np.arange(len(groups))
    learn, held = Table(index[:, None], None, None, groups).split(0.25)
    for g in set(groups):  # every recording: its last 3 of 12 windows held out, 9 learned
        assert held.x[held.groups == g, 0].tolist() == index[groups == g][-3:].tolist()
        assert learn.x[learn.groups == g, 0].tolist() == index[groups == g][:-3].tolist()
    store = Store(tmp_path / "store")
    first = store.init(path, **{**SETTINGS, "holdout": "recent", "epochs": 2})
    assert first.metrics["holdout_rows"] == 8  # the default 20%: 2 windows of each recording


def test_the_command_line_takes_a_manifest_of_recordings(tmp_path):
    """``--data MANIFEST`` (a CSV of path, label, fs, as ``retain run --scenario recordings``
    reads) works as a folder does: .npy recordings cut into windows of 2048 samples."""
    from test_recordings import signal
    from typer.testing import CliRunner

    from retain.cli import app

    rows = []
    for number, (label, period) in enumerate([("normal", None), ("inner", 40), ("ball", 23)]):
        np.save(tmp_path / f"r{number}.npy", signal(12 * 2048, period, number))
        rows.append({"path": f"r{number}.npy", "label": label, "fs": 12000})
    manifest = tmp_path / "manifest.csv"
    pd.DataFrame(rows).to_csv(manifest, index=False)
    runner = CliRunner()
    common = ["--store", str(tmp_path / "store")]
    init = runner.invoke(app, ["init", *common, "--data", str(manifest), "--model",
                               "vibration-cnn", "--model-arg", "width=4", "--holdout", "recent",
                               "--epochs", "20", "--lr", "0.01", "--min-holdout", "3"])
    assert init.exit_code == 0, init.output
    said = " ".join(init.output.split())
    assert "3 recordings at 12000 Hz, 36 windows of 2048" in said
    assert "(holdout error 0.0000)" in said  # the last 2 windows of each recording held out
    votes = runner.invoke(app, ["predict", *common, "--data", str(manifest), "--per",
                                "recording"])
    assert votes.exit_code == 0, votes.output
    lines = votes.stdout.strip().splitlines()
    assert [line.split(",")[:2] for line in lines[1:]] == [
        ["r0.npy", "normal"], ["r1.npy", "inner"], ["r2.npy", "ball"]]
