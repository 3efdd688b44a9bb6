"""Recordings in: a folder of CWRU files or a manifest table, checked, at one sampling rate.

Why: a model is built for one sampling rate and a real collection of recordings rarely has
one (CWRU's normal baseline is at 48 kHz, its faults at 12 kHz); a NaN or a flat stretch (a
loose cable, a clipped sensor) must be found in the file, not as a loss of NaN hours later.
Every problem is a :class:`~retain.errors.RetainError` of one line naming the file.

A manifest is a CSV or Parquet table, one row per recording: ``path`` (relative to the
manifest), ``label``, optionally ``fs`` (its sampling rate), ``channel`` (variable, key or
column; several joined by ``+``), ``rpm``, and any other column to split by (machine, load).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch

from retain.datasets.files import TABLE_SUFFIXES, file_suffix, read_table_file
from retain.errors import RetainError
from retain.vibration.cwru import cwru_file
from retain.vibration.readers import SUFFIXES, read_signal

__all__ = ["MAX_FLAT", "Recording", "RecordingSet", "load_recordings"]

MAX_FLAT = 64  # this many equal samples in a row is a dead or clipped sensor, not vibration
_RESERVED = ("path", "label", "fs", "channel")


@dataclass
class Recording:
    """One recording at the set's rate: ``signal`` float32 ``[C, T]`` and what it is.

    ``meta`` holds ``fault`` (the label), ``file`` and every column to split by (CWRU files:
    ``size`` in inches, ``load`` in HP, ``number``, ``rpm``); ``source_fs`` is the file's own
    rate, ``rpm`` the shaft speed when known (it places the report's frequency marks).
    """

    path: Path
    signal: torch.Tensor
    label: str
    meta: dict[str, Any]
    source_fs: float
    rpm: float | None = None


@dataclass
class RecordingSet:
    """Recordings at one rate ``fs``; ``classes`` names the labels (index = class id)."""

    recordings: list[Recording]
    fs: float
    classes: tuple[str, ...]
    resampled: list[str] = field(default_factory=list)  # "97.mat: 48000 -> 12000 Hz (x 1/4)"

    def __len__(self) -> int:
        return len(self.recordings)

    def __iter__(self):
        return iter(self.recordings)

    def label_id(self, recording: Recording) -> int:
        return self.classes.index(recording.label)

    def describe(self) -> str:
        """One paragraph for reports and ``stream.info``: what was loaded and resampled."""
        n = sum(r.signal.shape[-1] for r in self.recordings)
        text = (f"{len(self.recordings)} recordings, {n / self.fs:.1f} s at {self.fs:g} Hz, "
                f"classes {', '.join(self.classes)}")
        if self.resampled:
            text += "; resampled with scipy.signal.resample_poly: " + "; ".join(self.resampled)
        return text


def _classes(labels: list[str]) -> tuple[str, ...]:
    from retain.vibration.physics import FAULT_CLASSES

    # the simulator's fault names keep its class ids, so simulated pre-training lines up
    if set(labels) <= set(FAULT_CLASSES):
        return FAULT_CLASSES

    def key(label: str) -> tuple:  # numbers by value (2 before 10), then names
        try:
            return (0, float(label), label)
        except ValueError:
            return (1, 0.0, label)

    return tuple(sorted(set(labels), key=key))


def _folder_rows(folder: Path) -> list[dict[str, Any]]:
    files = sorted((p for p in folder.rglob("*") if p.is_file() and file_suffix(p) in SUFFIXES),
                   key=lambda p: (cwru_file(p).number if cwru_file(p) else 1 << 30, str(p)))
    if not files:
        raise RetainError(f"{folder}: no recordings ({', '.join(SUFFIXES)}) in this folder")
    rows = []
    for p in files:
        known = cwru_file(p) if file_suffix(p) == ".mat" else None
        if known is None:
            raise RetainError(f"{p}: not a CWRU file number, so its label is unknown; pass a "
                              "manifest (CSV with columns path, label, ...) instead of the folder")
        rows.append({"path": p, "label": known.fault, "fs": known.fs, "rpm": known.rpm,
                     "fault": known.fault, "size": known.size, "load": known.load,
                     "number": known.number})
    return rows


def _manifest_rows(manifest: Path) -> list[dict[str, Any]]:
    frame = read_table_file(manifest, file_suffix(manifest))
    frame.columns = [str(c) for c in frame.columns]
    missing = [c for c in ("path", "label") if c not in frame.columns]
    if missing:
        raise RetainError(f"{manifest}: no column {missing[0]!r}; a manifest needs path and "
                          f"label, it has {', '.join(map(repr, frame.columns))}")
    if len(frame) == 0:
        raise RetainError(f"{manifest}: the manifest has no rows")
    rows = []
    for i, row in enumerate(frame.to_dict("records")):
        where = f"{manifest} row {i + 1}"
        path = row["path"]
        if not isinstance(path, str) or not path.strip():
            raise RetainError(f"{where}: empty path")
        p = Path(path) if Path(path).is_absolute() else manifest.parent / path
        if not p.is_file():
            raise RetainError(f"{where}: file {p} not found")
        label = row["label"]
        if label is None or label != label or not str(label).strip():
            raise RetainError(f"{where} ({p.name}): empty label; every recording needs one")
        known = cwru_file(p) if file_suffix(p) == ".mat" else None
        extra = {"size": known.size, "load": known.load, "number": known.number,
                 "rpm": known.rpm} if known else {}
        clean = {k: v for k, v in row.items() if v is not None and v == v}  # drop NaN cells
        rows.append({**extra, **clean, "path": p, "label": str(label).strip(),
                     "fault": str(label).strip()})
    return rows


def _check(path: Path, x: np.ndarray, max_flat: int | None) -> None:
    bad = ~np.isfinite(x)
    if bad.any():
        c, t = np.argwhere(bad)[0]
        raise RetainError(f"{path}: {int(bad.sum())} NaN/inf samples, the first at sample {t} "
                          f"of channel {c}; cut or interpolate them")
    if max_flat is None:
        return
    for c, channel in enumerate(x):
        edges = np.flatnonzero(np.diff(channel) != 0)  # last sample of each run
        starts = np.concatenate([[0], edges + 1])
        lengths = np.diff(np.concatenate([starts, [len(channel)]]))
        longest = int(np.argmax(lengths))
        if lengths[longest] >= max_flat:
            raise RetainError(f"{path}: flat segment of {lengths[longest]} equal samples from "
                              f"sample {starts[longest]} of channel {c} (dead or clipped "
                              f"sensor?); cut it out, or pass max_flat=None")


def _target_rate(rows: list[dict[str, Any]], fs: float | None) -> float:
    if fs is not None:
        return float(fs)
    rates: dict[float, list[str]] = {}
    for row in rows:
        rates.setdefault(row["fs"], []).append(row["path"].name)
    if len(rates) > 1:
        listed = "; ".join(f"{r:g} Hz: {', '.join(names[:3])}" + (", ..." if len(names) > 3
                           else "") for r, names in sorted(rates.items()))
        raise RetainError(f"recordings have different sampling rates ({listed}); pass fs=... "
                          "(--fs) to resample them to the model's rate")
    return float(next(iter(rates)))


def _resample(x: np.ndarray, source: float, target: float) -> tuple[np.ndarray, str]:
    from scipy.signal import resample_poly

    ratio = Fraction(target / source).limit_denominator(1000)
    y = resample_poly(x, ratio.numerator, ratio.denominator, axis=-1)
    return y, f"{source:g} -> {target:g} Hz (x {ratio.numerator}/{ratio.denominator})"


def load_recordings(
    source: str | os.PathLike[str],
    fs: float | None = None,
    channel: str | int | None = None,
    max_flat: int | None = MAX_FLAT,
) -> RecordingSet:
    """Load a folder of CWRU ``.mat`` files or the recordings a manifest lists.

    ``fs`` is the model's rate: recordings at another rate are resampled to it with
    ``scipy.signal.resample_poly`` (recorded in :meth:`RecordingSet.describe`); without it
    every recording must have the same rate. Files that carry no rate (``.npy``, tables) take
    the manifest's ``fs`` column, else ``fs``. ``channel`` is used where the manifest names
    none (CWRU: ``DE``, ``FE`` or ``BA``; default ``DE``).
    """
    src = Path(source).expanduser()
    if src.is_dir():
        rows = _folder_rows(src)
    elif src.is_file() and file_suffix(src) in TABLE_SUFFIXES:
        rows = _manifest_rows(src)
    elif src.exists():
        raise RetainError(f"{src}: pass a folder of recordings or a manifest table "
                          f"({', '.join(TABLE_SUFFIXES)}) listing them")
    else:
        raise RetainError(f"{src}: no such folder or manifest")
    loaded = []
    for row in rows:
        wanted = row.get("channel", channel)
        channels = None if wanted is None else [c.strip() for c in str(wanted).split("+")]
        x, own_fs = read_signal(row["path"], channels)
        rate = row.get("fs", own_fs if own_fs is not None else fs)
        if rate is None:
            raise RetainError(f"{row['path']}: the file carries no sampling rate; add an fs "
                              "column to the manifest (or pass fs=...)")
        if not float(rate) > 0:
            raise RetainError(f"{row['path']}: sampling rate must be > 0, got {rate!r}")
        _check(row["path"], x, max_flat)
        row["fs"] = float(rate)
        loaded.append((row, x))
    target = _target_rate([row for row, _ in loaded], fs)
    recordings, resampled = [], []
    for row, x in loaded:
        if row["fs"] != target:
            x, how = _resample(x, row["fs"], target)
            resampled.append(f"{row['path'].name}: {how}")
        meta = {k: v for k, v in row.items() if k not in _RESERVED}
        meta["file"] = row["path"].name
        signal = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        rpm = row.get("rpm")
        recordings.append(Recording(row["path"], signal, row["label"], meta, row["fs"],
                                    None if rpm is None else float(rpm)))
    return RecordingSet(recordings, target, _classes([r.label for r in recordings]), resampled)
