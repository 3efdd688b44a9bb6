"""Leak-free windows of real recordings, the streams built from them, and
``retain run --scenario recordings`` end to end on a tiny synthetic CWRU-like folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.io import savemat
from test_recordings import write_cwru

from retain.errors import RetainError
from retain.scenarios.catalog import build_model, build_scenario
from retain.vibration import load_recordings, recordings_stream, time_split


def _ramps(tmp_path, lengths=(5000, 4100, 3333), rate: float = 12_000) -> object:
    """Recordings whose sample i holds the value i + offset: a window's values say exactly
    which samples it took, so a leak cannot hide."""
    rows = []
    for k, n in enumerate(lengths):
        np.save(tmp_path / f"r{k}.npy", np.arange(n) + 100_000.0 * k)
        rows.append({"path": f"r{k}.npy", "label": ["normal", "ball", "inner_race"][k],
                     "fs": rate, "machine": ["b", "a", "b"][k], "size": [0.0, 0.007, 0.021][k]})
    pd.DataFrame(rows).to_csv(tmp_path / "manifest.csv", index=False)
    return tmp_path / "manifest.csv"


def _values(tensor: torch.Tensor) -> set[float]:
    return set(tensor.reshape(-1).tolist())


def test_time_split_puts_no_sample_on_both_sides(tmp_path) -> None:
    recs = load_recordings(_ramps(tmp_path))
    train, test = time_split(recs, length=256, stride=64, train_fraction=0.7)
    x_train, y_train = train.tensors
    x_test, _ = test.tensors
    assert not _values(x_train) & _values(x_test)  # no sample index on both sides
    for i, rec in enumerate(recs):
        cut = int(rec.signal.shape[-1] * 0.7)
        ends = train.start[train.recording == i] + 256
        assert int(ends.max()) <= cut <= int(test.start[test.recording == i].min())
        assert int(ends.max()) > cut - 64  # the training part is used up to the cut
    assert x_train.shape[1:] == (1, 256) and torch.equal(y_train, train.labels)
    assert x_train[1, 0, 0] == 64.0  # stride 64: window 1 starts at sample 64
    val_train, val = time_split(recs, 256, 64, 0.7, validation=0.2)
    assert not _values(val.tensors[0]) & _values(x_test)  # validation never sees test samples
    assert not _values(val.tensors[0]) & _values(val_train.tensors[0])
    assert float(val.tensors[0][val.recording == 0].max()) < 0.7 * 5000
    few, same_test = time_split(recs, 256, 64, 0.7, train_windows=3)
    assert len(few) == 9 and torch.equal(same_test.tensors[0], x_test)
    assert few.start.tolist() == [0, 64, 128] * 3


def test_windows_are_views_of_the_recordings_until_batched(tmp_path) -> None:
    recs = load_recordings(_ramps(tmp_path))
    train, _ = time_split(recs, length=256, stride=64)
    storage = recs.recordings[0].signal.untyped_storage().data_ptr()
    assert train.parts[0].untyped_storage().data_ptr() == storage
    window, label = train[3]
    assert window.untyped_storage().data_ptr() == storage and window[0, 0] == 3 * 64
    last, _ = train[len(train) - 1]
    assert last[0, 0] >= 200_000  # from the third recording
    assert train.tensors[0].untyped_storage().data_ptr() != storage  # batching copies


def test_stream_by_fault_is_class_incremental_and_leak_free(tmp_path) -> None:
    stream = recordings_stream(_ramps(tmp_path), by="fault", length=256, stride=128)
    assert [e.name for e in stream] == ["fault=normal", "fault=inner_race", "fault=ball"]
    assert [e.classes for e in stream] == [(0,), (1,), (3,)] and stream.n_classes == 4
    assert stream.name == "recordings by fault (class-incremental)"
    train = set().union(*(_values(e.train.tensors[0]) for e in stream))
    test = set().union(*(_values(e.test.tensors[0]) for e in stream))
    assert not train & test
    assert stream.info["model_args"] == {"features": "envelope", "fs": 12_000.0}
    model = build_model(stream, model="vibration-cnn")
    assert (model.length, model.n_classes, model.fs) == (256, 4, 12_000.0)


def test_stream_by_any_manifest_column_is_domain_incremental(tmp_path) -> None:
    manifest = _ramps(tmp_path)
    stream = recordings_stream(manifest, by="machine", length=256)
    assert [e.name for e in stream] == ["machine=a", "machine=b"]
    assert [e.classes for e in stream] == [(3,), (0, 1)]
    assert stream.name == "recordings by machine (domain-incremental)"
    sizes = recordings_stream(manifest, by="size", length=256, n_experiences=2)
    assert [e.name for e in sizes] == ["size=0.0", "size=0.007"]
    with pytest.raises(RetainError, match=r"r0\.npy: no column 'load' to split by; it has "
                                          r"fault, file, machine, size"):
        recordings_stream(manifest, by="load", length=256)
    with pytest.raises(RetainError, match=r"--experiences must be 1\.\.2, got 3"):
        recordings_stream(manifest, by="machine", length=256, n_experiences=3)


def test_recording_shorter_than_a_window_names_the_file(tmp_path) -> None:
    recs = load_recordings(_ramps(tmp_path, lengths=(5000, 300)))
    with pytest.raises(RetainError, match=r"r1\.npy: 300 samples, shorter than one window of 512"):
        time_split(recs, length=512)
    with pytest.raises(RetainError, match=r"r1\.npy: its last 30% has 90 samples, shorter than "
                                          r"one window of 200"):
        time_split(recs, length=200)
    with pytest.raises(RetainError, match="train_fraction must be in"):
        time_split(recs, length=64, train_fraction=1.0)


def test_cwru_folder_by_load_and_fault_with_resampled_normal(tmp_path) -> None:
    for number, period in ((209, 70), (210, 72), (234, 110), (235, 112)):
        write_cwru(tmp_path, number, n=3000, period=period, seed=number)
    savemat(tmp_path / "97.mat", {"X097_DE_time": np.random.default_rng(0).standard_normal(
        (12_000, 1)), "X097_FE_time": np.zeros((12_000, 1))})
    loads = recordings_stream(tmp_path, by="load", length=256, fs=12_000)
    assert [e.name for e in loads] == ["load=0", "load=1"]
    assert [e.classes for e in loads] == [(0, 1, 2), (1, 2)]  # normal only at 0 HP
    assert loads.info["resampled"] == ["97.mat: 48000 -> 12000 Hz (x 1/4)"]
    faults = recordings_stream(tmp_path, by="fault", length=256, fs=12_000)
    assert [e.name for e in faults] == ["fault=normal", "fault=inner_race", "fault=outer_race"]


# --------------------------------------------------------------------------- CLI


def _retain(*args):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "retain.cli", *args], capture_output=True,
                          text=True, timeout=300, env=env)


def test_cli_recordings_by_fault_end_to_end(tmp_path) -> None:
    data = tmp_path / "cwru"
    data.mkdir()
    for number, period in ((209, 70), (222, 160), (234, 110)):
        write_cwru(data, number, n=4000, period=period, seed=number)
    out = tmp_path / "out"
    proc = _retain("run", "--scenario", "recordings", "--data", str(data), "--by", "fault",
                   "--window", "256", "--stride", "128", "--epochs", "2", "--strategy", "naive",
                   "--strategy", "replay:capacity=30", "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    payload = json.loads(proc.stdout)
    assert set(payload["results"]) == {"naive", "replay:capacity=30", "joint (upper bound)"}
    naive = payload["results"]["naive"]
    assert naive["experience_names"] == ["fault=inner_race", "fault=outer_race", "fault=ball"]
    assert payload["config"]["by"] == "fault" and payload["config"]["model"] == "vibration-cnn"
    matrix = np.array(naive["accuracy_matrix"])
    assert matrix.shape == (3, 3) and matrix[0, 0] == 1.0  # one class learnt: all of it right
    assert payload["results"]["joint (upper bound)"]["average_accuracy"] > 0.5  # chance 1/3
    html = (out / "index.html").read_text()
    assert "recordings-load-0.png" in html and (out / "recordings-load-0.png").stat().st_size > 1e4


def test_recordings_scenario_options_are_checked() -> None:
    with pytest.raises(RetainError, match="--scenario recordings needs --data"):
        build_scenario("recordings", options={"by": "load"})
    with pytest.raises(RetainError, match="--data is not an option of scenario 'split-digits'; "
                                          "it is for recordings"):
        build_scenario("split-digits", options={"data": "x", "by": None})


def test_simulated_windows_of_the_cwru_bearing_share_the_class_ids() -> None:
    from retain.vibration.pretrain import simulated_windows

    x, y = simulated_windows(rpms=(1797, 1730), n_per_class=2, length=256).tensors
    assert x.shape == (16, 1, 256) and y.tolist() == [0, 0, 1, 1, 2, 2, 3, 3] * 2
    again, _ = simulated_windows(rpms=(1797, 1730), n_per_class=2, length=256).tensors
    assert torch.equal(x, again)


def test_report_groups_a_manifest_by_its_split_column(tmp_path) -> None:
    from retain.vibration.run_recordings import report_sections

    rng = np.random.default_rng(0)
    for k in range(3):
        np.save(tmp_path / f"s{k}.npy", rng.standard_normal(3000))
    pd.DataFrame({"path": [f"s{k}.npy" for k in range(3)], "label": ["a", "b", "a"],
                  "fs": 12_000, "rpm": 1797, "bearing": "motor-6205",
                  "machine": ["m1", "m1", "m2"]}).to_csv(tmp_path / "m.csv", index=False)
    (section,) = report_sections(tmp_path / "out", {}, {"data": str(tmp_path / "m.csv"),
                                                        "by": "machine", "window": 256})
    assert section.images == ["recordings-machine-m1.png", "recordings-machine-m2.png"]
    assert (tmp_path / "out" / "recordings-machine-m1.png").stat().st_size > 1e4
    assert "3 recordings" in section.text and "classes a, b" in section.text


def test_the_page_states_the_scenario_defaults() -> None:
    """docs/vibration.md tells what ``--scenario recordings`` trains with, and its CWRU figures
    are measured with it: a changed default must change the page (and rerun the figures)."""
    from pathlib import Path

    from retain.vibration.run_recordings import RUN_DEFAULTS

    page = (Path(__file__).parents[1] / "docs" / "vibration.md").read_text()
    assert (f"Adam, lr 3e-3, batch {RUN_DEFAULTS['batch_size']}, "
            f"**{RUN_DEFAULTS['epochs']} epochs** per experience") in " ".join(page.split())
    assert RUN_DEFAULTS["lr"] == 3e-3 and RUN_DEFAULTS["optimizer"] == "adam"
