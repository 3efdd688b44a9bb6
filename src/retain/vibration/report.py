"""Vibration plots: simulated examples and real recordings, with the bearing's characteristic
frequencies marked.

Why: before trusting a classifier on real data, look at it: each fault's envelope spectrum
should show lines where the bearing geometry and the shaft speed put them (BPFI for an inner
race fault, BPFO for the outer race, 2xBSF for a ball). CWRU's drive-end bearing is the SKF
6205-2RS, the simulator's ``motor-6205`` preset; recordings with an ``rpm`` get its lines.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from retain.vibration.cwru import bearing_machine
from retain.vibration.generator import generate
from retain.vibration.physics import (
    DEFAULT_FS,
    DEFAULT_LENGTH,
    FAULT_CLASSES,
    MachineType,
    fault_frequencies,
    get_machine,
)
from retain.vibration.recordings import Recording, RecordingSet
from retain.vibration.signal import envelope_spectrum
from retain.vibration.windows import windows_of

__all__ = ["FREQUENCY_MARKS", "plot_examples", "plot_recordings"]

# how plots mark the characteristic frequencies: key of fault_frequencies -> (label, colour)
FREQUENCY_MARKS = {
    "shaft": ("f_r", "0.45"),
    "ftf": ("FTF (cage)", "tab:olive"),
    "bsf": ("BSF", "tab:pink"),
    "2xbsf": ("2xBSF (ball)", "tab:red"),
    "bpfo": ("BPFO (outer)", "tab:green"),
    "bpfi": ("BPFI (inner)", "tab:blue"),
}


def plot_examples(
    machine: MachineType | str | int,
    path: str | os.PathLike[str],
    fs: float = DEFAULT_FS,
    length: int = DEFAULT_LENGTH,
    seed: int = 0,
    severity: float | tuple[float, float] = 1.5,
    n_average: int = 16,
    max_freq_hz: float | None = None,
) -> Path:
    """Save a PNG with one window and the envelope spectrum per fault class.

    The spectrum is averaged over ``n_average`` windows (single windows are
    noisy) and the characteristic frequencies (f_r, FTF, BSF, 2xBSF, BPFO,
    BPFI, dotted: 2nd harmonics) are marked, so a reader can check that each
    fault's lines land where the geometry says.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m = get_machine(machine)
    x, y = generate(m, max(1, int(n_average)), length, fs, seed, severity=severity)
    fr = fault_frequencies(m)
    fmax = max_freq_hz or min(fs / 2, 2.6 * max(fr["bpfi"], fr["2xbsf"]))
    freqs, spec = envelope_spectrum(x[:, 0], fs, band=(1000.0, None), max_freq_hz=fmax)
    t_ms = np.arange(length) / fs * 1000
    marks = FREQUENCY_MARKS
    fig, axes = plt.subplots(len(FAULT_CLASSES), 2, figsize=(13, 9.5), constrained_layout=True)
    for row in range(len(FAULT_CLASSES)):
        ax_t, ax_f = axes[row]
        first = int(np.flatnonzero(y == row)[0])
        ax_t.plot(t_ms, x[first, 0], lw=0.5, color="k")
        ax_t.set_ylabel(FAULT_CLASSES[row])
        mean_spec = spec[y == row].mean(axis=0)
        ax_f.plot(freqs, mean_spec, lw=1.0, color="k")
        for key, (lab, col) in marks.items():
            ax_f.axvline(fr[key], color=col, lw=1.2, alpha=0.85, label=lab if row == 0 else None)
            if key in ("bpfo", "bpfi", "2xbsf") and 2 * fr[key] <= fmax:
                ax_f.axvline(2 * fr[key], color=col, ls=":", lw=1.2, alpha=0.85)
        ax_f.set_ylim(0, float(mean_spec[freqs > 2].max()) * 1.15)
        ax_f.set_xlim(0, fmax)
    axes[0, 0].set_title("one raw window (acceleration, arbitrary units)")
    axes[0, 1].set_title(
        f"envelope spectrum, band > 1 kHz, mean of {max(1, int(n_average))} windows"
    )
    axes[-1, 0].set_xlabel("time [ms]")
    axes[-1, 1].set_xlabel("frequency [Hz]   (dotted: 2nd harmonic)")
    fig.legend(loc="outside lower center", ncol=6, fontsize=9)
    fig.suptitle(
        f"{m.name}: f_r = {m.shaft_hz:g} Hz, bearing {m.bearing.name}, "
        f"resonance {m.resonance_hz:g} Hz, fs = {fs:g} Hz"
    )
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def _mean_spectrum(rec: Recording, fs: float, length: int, fmax: float):
    view, _ = windows_of(rec, 0, rec.signal.shape[-1], length, length, "the recording")
    freqs, spec = envelope_spectrum(view[:, 0].numpy(), fs, band=(1000.0, None),
                                    max_freq_hz=fmax)
    return view[0, 0].numpy(), freqs, spec.mean(axis=0)


def _machine(rec: Recording):
    """The bearing to mark: the manifest's ``bearing`` column (a simulator preset name), or
    CWRU's 6205 for CWRU files; at the recording's ``rpm``. None when either is unknown."""
    preset = rec.meta.get("bearing", "motor-6205" if "number" in rec.meta else None)
    return None if preset is None or not rec.rpm else bearing_machine(rec.rpm, str(preset))


def plot_recordings(recordings: RecordingSet, recs: list[Recording], path: Path, title: str,
                    length: int = 2048, fmax: float = 500.0) -> Path:
    """One row per recording: a raw window, and the envelope spectrum (band above 1 kHz)
    averaged over all its non-overlapping windows, with f_r, FTF, BSF, 2xBSF, BPFO and BPFI
    of a 6205 bearing at the recording's speed marked (dotted: 2nd harmonics)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fs = recordings.fs
    fig, axes = plt.subplots(len(recs), 2, figsize=(13, 2.4 * len(recs) + 1),
                             constrained_layout=True, squeeze=False)
    t_ms = np.arange(length) / fs * 1000
    for row, rec in enumerate(recs):
        ax_t, ax_f = axes[row]
        raw, freqs, mean = _mean_spectrum(rec, fs, length, fmax)
        ax_t.plot(t_ms, raw, lw=0.5, color="k")
        ax_t.set_ylabel(f"{rec.label}\n{rec.meta['file']}")
        ax_f.plot(freqs, mean, lw=1.0, color="k")
        machine = _machine(rec)
        if machine is not None:
            lines = machine.frequencies()
            for key, (lab, col) in FREQUENCY_MARKS.items():
                ax_f.axvline(lines[key], color=col, lw=1.2, alpha=0.85,
                             label=lab if row == 0 else None)
                if key in ("bpfo", "bpfi", "2xbsf") and 2 * lines[key] <= fmax:
                    ax_f.axvline(2 * lines[key], color=col, ls=":", lw=1.2, alpha=0.85)
        ax_f.set_xlim(0, fmax)
        ax_f.set_ylim(0, float(mean[freqs > 2].max()) * 1.15)
    axes[0, 0].set_title("one raw window")
    axes[0, 1].set_title("mean envelope spectrum (band > 1 kHz); lines at the recording's rpm")
    axes[-1, 0].set_xlabel("time [ms]")
    axes[-1, 1].set_xlabel("frequency [Hz]   (dotted: 2nd harmonic)")
    if any(_machine(r) is not None for r in recs):
        fig.legend(loc="outside lower center", ncol=6, fontsize=9)
    fig.suptitle(title)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
