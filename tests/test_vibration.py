"""Bearing-vibration generator, envelope features, loaders and the vibration CNN."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.signal import hilbert

from retain.errors import RetainError
from retain.models import MODELS
from retain.vibration import (
    FAULT_CLASSES,
    MACHINE_TYPES,
    Bearing,
    EnvelopeSpectrum,
    MachineType,
    VibrationCNN,
    envelope_spectrum,
    fault_frequencies,
    generate,
    get_machine,
    load_vibration,
    make_dataset,
    plot_examples,
    save_vibration,
)

FS = 12_000
T = 2048
BIN = FS / T


def _mean_envelope(x: np.ndarray, y: np.ndarray, c: int) -> tuple[np.ndarray, np.ndarray]:
    f, s = envelope_spectrum(x[y == c, 0], FS, band=(1000.0, None), max_freq_hz=1000.0)
    return f, s.mean(axis=0)


# --------------------------------------------------------------------------- physics


def test_bearing_formulas_match_published_cwru_multiples() -> None:
    # CWRU 6205-2RS JEM SKF drive-end bearing, multiples of shaft speed as published
    # by the CWRU Bearing Data Center (its "BSF" 4.7135 is 2 x ball spin frequency).
    b = Bearing(9, 7.94, 39.04, 0.0)
    assert b.bpfi(1.0) == pytest.approx(5.4152, abs=2e-3)
    assert b.bpfo(1.0) == pytest.approx(3.5848, abs=2e-3)
    assert b.ftf(1.0) == pytest.approx(0.39828, abs=2e-4)
    assert 2 * b.bsf(1.0) == pytest.approx(4.7135, abs=2e-3)
    # BPFO + BPFI = n f_r and BPFO = n FTF hold for any geometry.
    b2 = Bearing(13, 9.525, 46.0, 40.0)
    assert b2.bpfo(30) + b2.bpfi(30) == pytest.approx(13 * 30)
    assert b2.bpfo(30) == pytest.approx(13 * b2.ftf(30))


def test_bad_geometry_rejected() -> None:
    with pytest.raises(RetainError, match="ball_diameter < pitch_diameter"):
        Bearing(9, 40.0, 39.0)
    with pytest.raises(RetainError, match="contact_angle"):
        Bearing(9, 7.9, 39.0, 95.0)


@pytest.mark.parametrize("machine", range(len(MACHINE_TYPES)))
def test_envelope_peak_at_characteristic_frequency(machine: int) -> None:
    m = MACHINE_TYPES[machine]
    x, y = generate(machine, n_per_class=24, seed=1)
    fr = fault_frequencies(m)
    # Search the whole region where any fault line could be, not just near the answer.
    lo = 0.8 * min(fr["bpfo"], fr["2xbsf"])
    hi = 1.2 * max(fr["bpfi"], fr["2xbsf"])
    for c in (1, 2, 3):
        f, s = _mean_envelope(x, y, c)
        region = (f >= lo) & (f <= hi)
        peak = f[region][np.argmax(s[region])]
        expected = m.fault_frequency(c)
        assert abs(peak - expected) <= BIN, (m.name, FAULT_CLASSES[c], peak, expected)


def test_inner_race_modulated_by_shaft_outer_race_not() -> None:
    m = MACHINE_TYPES[0]
    x, y = generate(m, n_per_class=32, seed=2, classes=[1, 2])
    f, s_in = _mean_envelope(x, y, 1)
    _, s_out = _mean_envelope(x, y, 2)
    k = int(np.argmin(np.abs(f - m.shaft_hz)))
    rel_in = s_in[k] / np.median(s_in)
    rel_out = s_out[k] / np.median(s_out)
    assert rel_in > 2.0 and rel_out < 1.5, (rel_in, rel_out)


def test_normal_class_has_no_fault_line() -> None:
    x, y = generate(0, n_per_class=32, seed=3, classes=["normal"])
    f, s = _mean_envelope(x, y, 0)
    assert s[f > 20].max() < 2.0 * np.median(s[f > 20])


@pytest.mark.parametrize("machine", [0, 2, 4, 5])
def test_ringing_at_machine_resonance(machine: int) -> None:
    m = MACHINE_TYPES[machine]
    x, _ = generate(machine, n_per_class=16, seed=4, classes=["outer_race"])
    psd = (np.abs(np.fft.rfft(x[:, 0], axis=-1)) ** 2).mean(axis=0)
    f = np.fft.rfftfreq(T, 1 / FS)
    band = f > 1000
    peak = f[band][np.argmax(psd[band])]
    assert abs(peak - m.resonance_hz) < 0.1 * m.resonance_hz, (m.name, peak)


def test_machine_types_are_distinct() -> None:
    names = [m.name for m in MACHINE_TYPES]
    assert len(MACHINE_TYPES) >= 8 and len(set(names)) == len(names)
    for attr in ("shaft_hz", "resonance_hz", "noise_std", "load", "bpfo", "bpfi"):
        values = [round(getattr(m, attr), 3) for m in MACHINE_TYPES]
        assert len(set(values)) >= 4, attr
    # Spectral centroid of faulty signals follows the resonance.
    cents = []
    for i in (0, 4):
        x, _ = generate(i, n_per_class=8, seed=0, classes=[2])
        p = np.abs(np.fft.rfft(x[:, 0], axis=-1)) ** 2
        f = np.fft.rfftfreq(T, 1 / FS)
        cents.append(float((p * f).sum() / p.sum()))
    assert cents[1] > cents[0] + 500


# --------------------------------------------------------------------------- generator


def test_shapes_and_dtypes() -> None:
    x, y = generate("pump-6308", n_per_class=5, length=1024)
    assert x.shape == (20, 1, 1024) and x.dtype == np.float32
    assert y.shape == (20,) and y.dtype == np.int64
    assert y.tolist() == [0] * 5 + [1] * 5 + [2] * 5 + [3] * 5
    assert np.isfinite(x).all()


def test_deterministic_and_seeded() -> None:
    a, ya = generate(3, n_per_class=6, seed=7)
    b, yb = generate(3, n_per_class=6, seed=7)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ya, yb)
    c, _ = generate(3, n_per_class=6, seed=8)
    assert not np.allclose(a, c)
    # One class alone equals that class inside the full draw (per-class streams).
    d, _ = generate(3, n_per_class=6, seed=7, classes=["ball"])
    np.testing.assert_array_equal(d, a[ya == 3])


def test_machine_streams_independent_of_list_order() -> None:
    d1 = make_dataset([0, 1], n_per_class=8, seed=0)
    d2 = make_dataset([1, 0], n_per_class=8, seed=0)
    tr1, _ = d1.for_machine("fan-6203")
    tr2, _ = d2.for_machine("fan-6203")
    np.testing.assert_array_equal(tr1.tensors[0].numpy(), tr2.tensors[0].numpy())


def test_make_dataset_structure() -> None:
    data = make_dataset(3, n_per_class=8, seed=0, test_fraction=0.25)
    x, y, mid = data.train.tensors
    assert x.shape == (3 * 4 * 6, 1, T) and x.dtype == torch.float32
    assert y.dtype == torch.int64 and mid.dtype == torch.int64
    assert data.test.tensors[0].shape[0] == 3 * 4 * 2
    assert [m.name for m in data.machines] == [m.name for m in MACHINE_TYPES[:3]]
    tr, te = data.for_machine(1)
    assert set(tr.tensors[2].tolist()) == {1}
    assert torch.bincount(te.tensors[1]).tolist() == [2, 2, 2, 2]  # stratified


def test_generator_input_errors() -> None:
    with pytest.raises(RetainError, match="unknown machine type"):
        generate("turbine-9999")
    with pytest.raises(RetainError, match="Nyquist"):
        generate("spindle-7206", n_per_class=1, fs=8000)
    with pytest.raises(RetainError, match="out of range"):
        generate(len(MACHINE_TYPES))
    with pytest.raises(RetainError, match="fault class"):
        generate(0, classes=["cage"])
    assert get_machine(MACHINE_TYPES[2]) is MACHINE_TYPES[2]


def test_custom_machine_type() -> None:
    m = MachineType("my-rig", 25.0, Bearing(8, 7.0, 34.0), 3300.0, 0.05, 1.0, 0.2)
    x, y = generate(m, n_per_class=3, seed=0)
    assert x.shape == (12, 1, T)


# --------------------------------------------------------------------------- envelope


@pytest.mark.parametrize("band", [None, (1000.0, None), (1500.0, 4500.0)])
def test_envelope_module_matches_numpy(band) -> None:
    x, _ = generate(1, n_per_class=2, seed=0)
    f, s = envelope_spectrum(x, FS, band=band, max_freq_hz=800.0)
    mod = EnvelopeSpectrum(max_freq_hz=800.0, fs=FS, band=band)
    out = mod(torch.from_numpy(x))
    assert out.shape == s.shape == (8, 1, mod.n_bins(T)) and len(f) == s.shape[-1]
    np.testing.assert_allclose(out.numpy(), s, rtol=1e-3, atol=1e-5 * s.max())


def test_envelope_equals_scipy_hilbert_without_band() -> None:
    x = np.random.default_rng(0).standard_normal((3, 1000))
    env = np.abs(hilbert(x, axis=-1))
    env -= env.mean(axis=-1, keepdims=True)
    w = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(1000) / 1000)
    ref = np.abs(np.fft.rfft(env * w, axis=-1)) * 2 / w.sum()
    _, s = envelope_spectrum(x, 1000.0)
    np.testing.assert_allclose(s, ref, rtol=1e-9, atol=1e-12)


# --------------------------------------------------------------------------- loaders


def _table(n: int = 6, t: int = 64) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.standard_normal((n, t)), columns=[f"s{i}" for i in range(t)])
    df["label"] = ["normal", "inner_race", "outer_race", "ball", "normal", "ball"][:n]
    df["machine"] = ["pump", "pump", "fan", "fan", "fan", "pump"][:n]
    return df


def test_npz_roundtrip(tmp_path) -> None:
    x, y = generate(0, n_per_class=2, length=256)
    machine = np.array(["a"] * 4 + ["b"] * 4)
    p = save_vibration(tmp_path / "v.npz", x, y, machine)
    rec = load_vibration(p)
    np.testing.assert_array_equal(rec.signals, x)
    np.testing.assert_array_equal(rec.labels, y)
    assert rec.machine_names == ("a", "b") and rec.machine_ids.tolist() == [0] * 4 + [1] * 4
    assert rec.label_names == FAULT_CLASSES
    xs, ys, ms = rec.to_tensor_dataset().tensors
    assert xs.shape == (8, 1, 256) and ys.dtype == ms.dtype == torch.int64
    assert len(rec.for_machine("b")) == 4


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_table_roundtrip(tmp_path, suffix: str) -> None:
    df = _table()
    p = tmp_path / f"v{suffix}"
    df.to_csv(p, index=False) if suffix == ".csv" else df.to_parquet(p)
    rec = load_vibration(p)
    assert rec.signals.shape == (6, 1, 64) and rec.signals.dtype == np.float32
    assert rec.labels.tolist() == [0, 1, 2, 3, 0, 3]  # names map to FAULT_CLASSES indices
    assert rec.machine_names == ("fan", "pump")
    np.testing.assert_allclose(
        rec.signals[:, 0], df[[f"s{i}" for i in range(64)]].to_numpy(), rtol=1e-6
    )


def test_table_unknown_machine_column_lists_columns(tmp_path) -> None:
    p = tmp_path / "v.csv"
    _table().rename(columns={"machine": "machine_type"}).to_csv(p, index=False)
    with pytest.raises(RetainError, match="machine-type column 'machine' not found") as e:
        load_vibration(p)
    assert "'machine_type'" in str(e.value) and "'label'" in str(e.value)
    assert len(load_vibration(p, machine_col="machine_type")) == 6
    assert load_vibration(p, machine_col=None).machine_names == ("0",)


def test_nan_rows_reported(tmp_path) -> None:
    df = _table()
    df.loc[2, "s5"] = np.nan
    df.loc[4, "s0"] = np.nan
    p = tmp_path / "v.csv"
    df.to_csv(p, index=False)
    with pytest.raises(RetainError, match=r"NaN.*2 row\(s\): 2, 4;"):
        load_vibration(p)
    df = _table()
    df.loc[1, "label"] = None
    df.to_csv(p, index=False)
    with pytest.raises(RetainError, match="missing label values in rows 1"):
        load_vibration(p)


def test_loader_shape_and_empty_errors(tmp_path) -> None:
    p = tmp_path / "bad.npz"
    np.savez(p, signals=np.zeros((2, 1, 3, 4)), labels=np.zeros(2), machine=np.zeros(2))
    with pytest.raises(RetainError, match=r"\[N, C, T\]"):
        load_vibration(p)
    np.savez(p, signals=np.zeros((3, 1, 8)), labels=np.zeros(2), machine=np.zeros(3))
    with pytest.raises(RetainError, match="3 signals but 2 labels"):
        load_vibration(p)
    np.savez(p, x=np.zeros((3, 8)))
    with pytest.raises(RetainError, match="no 'signals'.*'x'"):
        load_vibration(p)
    e = tmp_path / "empty.csv"
    _table().iloc[:0].to_csv(e, index=False)
    with pytest.raises(RetainError, match="no rows"):
        load_vibration(e)
    with pytest.raises(RetainError, match="not found"):
        load_vibration(tmp_path / "missing.npz")
    with pytest.raises(RetainError, match="unsupported"):
        load_vibration(tmp_path / "x.txt")


# --------------------------------------------------------------------------- model


@pytest.mark.parametrize("features", ["raw", "envelope"])
def test_model_shapes(features: str) -> None:
    model = VibrationCNN(features=features)
    out = model(torch.zeros(3, 1, T))
    assert out.shape == (3, 4)
    free = VibrationCNN(features=features, length=None)
    assert free(torch.randn(2, 1, 1024)).shape == (2, 4)


def test_model_rejects_wrong_input() -> None:
    model = VibrationCNN(length=2048)
    with pytest.raises(RetainError, match="model expects signals of length 2048, got 1024"):
        model(torch.zeros(2, 1, 1024))
    with pytest.raises(RetainError, match="1 channel"):
        model(torch.zeros(2, 3, 2048))
    with pytest.raises(RetainError, match=r"\[batch, channels, time\]"):
        model(torch.zeros(2, 2048))
    with pytest.raises(RetainError, match="features"):
        VibrationCNN(features="mfcc")


def test_registry() -> None:
    assert MODELS["vibration-cnn"] is VibrationCNN


def test_cnn_learns_one_machine_type() -> None:
    """Sanity check: a small CNN learns machine type 0 in a couple of seconds."""
    torch.manual_seed(0)
    data = make_dataset([0], n_per_class=64, seed=0, severity=2.0)
    x, y, _ = data.train.tensors
    model = VibrationCNN()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(8):
        perm = torch.randperm(len(y), generator=g)
        for i in range(0, len(y), 32):
            b = perm[i : i + 32]
            loss = torch.nn.functional.cross_entropy(model(x[b]), y[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    xt, yt, _ = data.test.tensors
    with torch.no_grad():
        acc = (model(xt).argmax(1) == yt).float().mean().item()
    assert acc > 0.9, acc


def test_plot_examples(tmp_path) -> None:
    p = plot_examples(0, tmp_path / "ex.png", n_average=2)
    assert p.exists() and p.stat().st_size > 10_000
