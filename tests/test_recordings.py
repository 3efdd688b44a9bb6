"""retain.vibration: reading recordings (.mat, .wav, .npy, .npz, CSV), CWRU names, resampling
and every bad input as one line naming the file. Tiny files written to tmp_path; no CWRU data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.io import savemat, wavfile

from retain.errors import RetainError
from retain.vibration import cwru_file, load_recordings
from retain.vibration.cwru import variable
from retain.vibration.readers import read_signal


def signal(n: int, period: int | None, seed: int = 0) -> np.ndarray:
    """Noise plus decaying ringing every ``period`` samples (a fault's impacts)."""
    rng = np.random.default_rng(seed)
    x = 0.05 * rng.standard_normal(n)
    if period:
        impulses = np.zeros(n)
        impulses[rng.integers(0, period)::period] = 1.0
        t = np.arange(64)
        x += np.convolve(impulses, np.exp(-t / 8) * np.sin(2 * np.pi * t / 4))[:n]
    return x


def write_cwru(folder, number: int, n: int = 4000, period: int | None = 75, seed: int = 0,
               channels=("DE", "FE")) -> None:
    """A CWRU-like file: ``X209_DE_time`` ... as n x 1 float64, plus ``X209RPM``."""
    content = {f"X{number:03d}_{c}_time": signal(n, period, seed + i)[:, None]
               for i, c in enumerate(channels)}
    content[f"X{number:03d}RPM"] = np.array([[1797.0]])
    savemat(folder / f"{number}.mat", content)


# --------------------------------------------------------------------------- CWRU names


def _what(name: str) -> tuple:
    f = cwru_file(name)
    return f.fault, f.size, f.load


def test_cwru_file_numbers_give_fault_size_load_and_rate() -> None:
    f = cwru_file("209.mat")
    assert (f.fault, f.size, f.load, f.fs, f.rpm) == ("inner_race", 0.021, 0, 12_000, 1797)
    assert _what("data/12k_Drive_End_B021_3_225.mat") == ("ball", 0.021, 3)
    assert _what("IR007_1_106.mat") == ("inner_race", 0.007, 1)
    assert _what("237.mat") == ("outer_race", 0.021, 3)
    assert _what("198.mat") == ("outer_race", 0.014, 1)
    assert (cwru_file("97.mat").fault, cwru_file("97.mat").fs) == ("normal", 48_000)
    assert cwru_file("100.mat").load == 3
    for other in ("300.mat", "readme.mat", "Normal_0.mat", "104.mat"):
        assert cwru_file(other) is None
    assert variable(97) == "X097_DE_time" and variable(209, "ba") == "X209_BA_time"
    with pytest.raises(RetainError, match="channel must be one of DE, FE, BA"):
        variable(209, "XX")


def test_folder_of_cwru_files_needs_no_manifest(tmp_path) -> None:
    write_cwru(tmp_path, 209)
    write_cwru(tmp_path, 222, period=90)
    (tmp_path / "README.md").write_text("not a recording")
    recs = load_recordings(tmp_path)
    assert [r.meta["file"] for r in recs] == ["209.mat", "222.mat"]
    assert [r.label for r in recs] == ["inner_race", "ball"]
    assert recs.classes == ("normal", "inner_race", "outer_race", "ball")  # simulator's ids
    first = recs.recordings[0]
    assert first.meta["load"] == 0 and first.meta["size"] == 0.021 and first.rpm == 1797
    assert first.signal.shape == (1, 4000) and first.signal.dtype == torch.float32
    fe = load_recordings(tmp_path, channel="FE").recordings[0].signal
    assert not torch.equal(fe, first.signal)


def test_cwru_variable_is_chosen_by_the_files_own_number(tmp_path) -> None:
    # CWRU's 99.mat also carries 98.mat's variables: the file's own number decides
    own, copy = signal(3000, None, 1), signal(3000, None, 2)
    savemat(tmp_path / "99.mat", {"X098_DE_time": copy[:, None], "X099_DE_time": own[:, None]})
    x, fs = read_signal(tmp_path / "99.mat")
    assert fs == 48_000 and np.allclose(x[0], own)


# --------------------------------------------------------------------------- file types


def test_manifest_reads_every_file_type_with_its_channels(tmp_path) -> None:
    n = 3000
    a, b = signal(n, 50, 1), signal(n, 80, 2)
    savemat(tmp_path / "rig.mat", {"acc_x": a[:, None], "acc_y": b[:, None]})
    pcm = (np.stack([a, b], axis=1) / 4 * 32767).astype(np.int16)
    wavfile.write(tmp_path / "two.wav", 12_000, pcm)
    np.save(tmp_path / "one.npy", a)
    np.savez(tmp_path / "arr.npz", z=b, fs=np.array(12_000.0))
    pd.DataFrame({"x": a, "y": b}).to_csv(tmp_path / "table.csv", index=False)
    pd.DataFrame({"x": a, "y": b}).to_parquet(tmp_path / "table.parquet")
    pd.DataFrame({
        "path": ["rig.mat", "two.wav", "one.npy", "arr.npz", "table.csv", "table.parquet"],
        "label": ["inner_race", "outer_race", "normal", "ball", "normal", "ball"],
        "channel": ["acc_y", "1", None, None, "x", "x+y"],
        "fs": [12_000, None, 12_000, None, 12_000, 12_000],
        "machine": ["rig", "rig", "bench", "bench", "rig", "bench"],
    }).to_csv(tmp_path / "manifest.csv", index=False)
    recs = load_recordings(tmp_path / "manifest.csv")
    by_file = {r.meta["file"]: r for r in recs}
    assert np.allclose(by_file["rig.mat"].signal[0], b, atol=1e-6)
    assert np.allclose(by_file["two.wav"].signal[0], b / 4, atol=1e-4)  # PCM scaled to [-1, 1)
    assert np.allclose(by_file["one.npy"].signal[0], a, atol=1e-6)
    assert np.allclose(by_file["arr.npz"].signal[0], b, atol=1e-6)
    assert np.allclose(by_file["table.csv"].signal[0], a, atol=1e-6)
    assert by_file["table.parquet"].signal.shape == (2, n)
    assert by_file["two.wav"].source_fs == 12_000  # from the header
    assert by_file["rig.mat"].meta["machine"] == "rig" and recs.fs == 12_000


# --------------------------------------------------------------------------- resampling


def test_recordings_at_another_rate_are_resampled_and_described(tmp_path) -> None:
    t48 = np.arange(16_000) / 48_000
    savemat(tmp_path / "97.mat", {"X097_DE_time": np.sin(2 * np.pi * 250 * t48)[:, None]})
    write_cwru(tmp_path, 209)
    with pytest.raises(RetainError, match=r"different sampling rates \(12000 Hz: 209\.mat; "
                                          r"48000 Hz: 97\.mat\); pass fs="):
        load_recordings(tmp_path)
    recs = load_recordings(tmp_path, fs=12_000)
    normal = next(r for r in recs if r.label == "normal")
    assert normal.signal.shape == (1, 4000) and normal.source_fs == 48_000
    spectrum = np.abs(np.fft.rfft(normal.signal[0].numpy()))
    assert np.fft.rfftfreq(4000, 1 / 12_000)[spectrum.argmax()] == pytest.approx(250, abs=3)
    assert recs.resampled == ["97.mat: 48000 -> 12000 Hz (x 1/4)"]
    assert "resample_poly: 97.mat: 48000 -> 12000 Hz" in recs.describe()


# --------------------------------------------------------------------------- bad input


def _manifest(tmp_path, rows: dict) -> object:
    path = tmp_path / "manifest.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_mat_without_the_expected_variable_lists_what_it_has(tmp_path) -> None:
    savemat(tmp_path / "209.mat", {"X210_DE_time": signal(3000, 50)[:, None],
                                   "X210RPM": np.array([[1774.0]])})
    with pytest.raises(RetainError, match=r"209\.mat: no variable 'X209_DE_time' \(CWRU file "
                                          r"209\); it has 'X210RPM', 'X210_DE_time'"):
        load_recordings(tmp_path)
    savemat(tmp_path / "rig.mat", {"a": signal(3000, 50)[:, None], "b": signal(3000, 9)[:, None]})
    path = _manifest(tmp_path, {"path": ["rig.mat"], "label": ["ball"], "fs": [12_000]})
    with pytest.raises(RetainError, match=r"rig\.mat: 2 variables \('a', 'b'\); say which"):
        load_recordings(path)
    path = _manifest(tmp_path, {"path": ["rig.mat"], "label": ["ball"], "channel": ["c"]})
    with pytest.raises(RetainError, match=r"rig\.mat: no variable 'c'; it has 'a', 'b'"):
        load_recordings(path)


def test_unknown_file_type_and_non_cwru_names(tmp_path) -> None:
    (tmp_path / "run1.txt").write_text("1\n2\n")
    path = _manifest(tmp_path, {"path": ["run1.txt"], "label": ["normal"]})
    with pytest.raises(RetainError, match=r"run1\.txt: unknown file type '\.txt'; recordings can"):
        load_recordings(path)
    np.save(tmp_path / "mine.npy", signal(3000, 50))
    folder = tmp_path / "folder"
    folder.mkdir()
    np.save(folder / "mine.npy", signal(3000, 50))
    with pytest.raises(RetainError, match=r"mine\.npy: not a CWRU file number.*manifest"):
        load_recordings(folder)
    with pytest.raises(RetainError, match=r"mine\.npy: pass a folder of recordings or a manifest"):
        load_recordings(tmp_path / "mine.npy")
    path = _manifest(tmp_path, {"path": ["mine.npy"], "label": ["normal"]})
    with pytest.raises(RetainError, match=r"mine\.npy: the file carries no sampling rate"):
        load_recordings(path)


def test_nan_and_flat_segments_are_found_in_the_file(tmp_path) -> None:
    x = signal(3000, 50)
    x[1234] = np.nan
    np.save(tmp_path / "gap.npy", x)
    y = signal(3000, 50)
    y[500:700] = y[500]
    np.save(tmp_path / "dead.npy", y)
    for name, message in (("gap.npy", r"gap\.npy: 1 NaN/inf samples, the first at sample 1234"),
                          ("dead.npy", r"dead\.npy: flat segment of 200 equal samples from "
                                       r"sample 500 of channel 0")):
        path = _manifest(tmp_path, {"path": [name], "label": ["normal"], "fs": [12_000]})
        with pytest.raises(RetainError, match=message):
            load_recordings(path)
    path = _manifest(tmp_path, {"path": ["dead.npy"], "label": ["normal"], "fs": [12_000]})
    assert len(load_recordings(path, max_flat=None)) == 1


def test_manifest_rows_with_a_missing_file_or_empty_label(tmp_path) -> None:
    np.save(tmp_path / "ok.npy", signal(3000, 50))
    path = _manifest(tmp_path, {"path": ["ok.npy", "gone.npy"], "label": ["normal", "ball"],
                                "fs": [12_000, 12_000]})
    with pytest.raises(RetainError, match=r"manifest\.csv row 2: file .*gone\.npy not found"):
        load_recordings(path)
    path = _manifest(tmp_path, {"path": ["ok.npy", "ok.npy"], "label": ["normal", None],
                                "fs": [12_000, 12_000]})
    with pytest.raises(RetainError, match=r"manifest\.csv row 2 \(ok\.npy\): empty label"):
        load_recordings(path)
    path = _manifest(tmp_path, {"file": ["ok.npy"], "label": ["normal"]})
    with pytest.raises(RetainError, match=r"manifest\.csv: no column 'path'"):
        load_recordings(path)
    with pytest.raises(RetainError, match=r"nowhere: no such folder or manifest"):
        load_recordings(tmp_path / "nowhere")


def test_other_labels_are_numbered_in_sorted_order(tmp_path) -> None:
    for k in range(3):
        np.save(tmp_path / f"r{k}.npy", signal(3000, 50, k))
    path = _manifest(tmp_path, {"path": ["r0.npy", "r1.npy", "r2.npy"], "label": [10, 2, "x"],
                                "fs": [12_000] * 3})
    recs = load_recordings(path)
    assert recs.classes == ("2", "10", "x")
    assert [recs.label_id(r) for r in recs] == [1, 0, 2]
