"""Users' own vibration windows in files: save and load them as :class:`VibrationRecords`."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import TensorDataset

from retain.datasets.files import SUFFIXES, file_suffix, read_table_file
from retain.errors import RetainError
from retain.vibration.physics import FAULT_CLASSES

# --------------------------------------------------------------------------- real data


@dataclass
class VibrationRecords:
    """Users' recordings: ``signals`` float32 [N, C, T], ``labels`` int64 [N], machine types.

    ``machine`` holds the machine-type value of each row as a string;
    ``machine_ids`` indexes ``machine_names`` (sorted), which is the task id.
    """

    signals: np.ndarray
    labels: np.ndarray
    machine: np.ndarray
    machine_names: tuple[str, ...]
    machine_ids: np.ndarray
    label_names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.labels)

    def to_tensor_dataset(self) -> TensorDataset:
        """``TensorDataset(x, y, machine_id)`` as produced by :func:`make_dataset`."""
        return TensorDataset(
            torch.from_numpy(self.signals),
            torch.from_numpy(self.labels),
            torch.from_numpy(self.machine_ids),
        )

    def for_machine(self, name: str) -> TensorDataset:
        """``TensorDataset(x, y, machine_id)`` of one machine type (by its value)."""
        if str(name) not in self.machine_names:
            raise RetainError(f"machine {name!r} not in data; machine types: {self.machine_names}")
        keep = self.machine == str(name)
        ds = self.to_tensor_dataset()
        return TensorDataset(*(t[torch.from_numpy(keep)] for t in ds.tensors))


def _fmt(names: Sequence[Any], limit: int = 15) -> str:
    names = list(names)
    s = ", ".join(repr(str(n)) for n in names[:limit])
    return s + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


def _fmt_rows(rows: Sequence[int], limit: int = 10) -> str:
    rows = list(rows)
    s = ", ".join(str(r) for r in rows[:limit])
    return s + (f", ... ({len(rows) - limit} more)" if len(rows) > limit else "")


def _suffix(p: Path) -> str:
    suffix = file_suffix(p)
    if suffix not in SUFFIXES:
        raise RetainError(f"{p}: unsupported file type; use .npz, .csv or .parquet")
    return suffix


def _parse_labels(raw: np.ndarray, where: str) -> tuple[np.ndarray, tuple[str, ...]]:
    # not datasets.files.encode_labels: fault names keep their FAULT_CLASSES index (so a file
    # of "ball" rows only is class 3, as in the simulator), and fractions are refused
    raw = np.asarray(raw)
    if raw.dtype.kind in "iu":
        y = raw.astype(np.int64)
    elif raw.dtype.kind == "f":
        if np.isnan(raw).any():
            rows = np.flatnonzero(np.isnan(raw))
            raise RetainError(f"{where}: missing labels in rows {_fmt_rows(rows.tolist())}")
        if not np.all(raw == np.round(raw)):
            raise RetainError(f"{where}: labels must be integers or class names, got fractions")
        y = raw.astype(np.int64)
    else:
        s = [str(v) for v in raw.tolist()]
        names = FAULT_CLASSES if set(s) <= set(FAULT_CLASSES) else tuple(sorted(set(s)))
        lookup = {n: i for i, n in enumerate(names)}
        return np.array([lookup[v] for v in s], dtype=np.int64), names
    if (y < 0).any():
        raise RetainError(f"{where}: labels must be >= 0, got min {y.min()}")
    k = int(y.max()) + 1
    names = FAULT_CLASSES if k <= len(FAULT_CLASSES) else tuple(str(i) for i in range(k))
    return y, names


def _records(
    signals: np.ndarray, labels: np.ndarray, machine: np.ndarray, where: str
) -> VibrationRecords:
    if signals.ndim == 2:
        signals = signals[:, None, :]
    if signals.ndim != 3:
        raise RetainError(
            f"{where}: signals must be [N, C, T] (or [N, T] for one channel), got shape "
            f"{signals.shape}"
        )
    n = signals.shape[0]
    if n == 0 or signals.shape[2] == 0:
        raise RetainError(f"{where}: no signals (shape {signals.shape})")
    if signals.dtype.kind not in "iuf":
        raise RetainError(f"{where}: signals must be numeric, got dtype {signals.dtype}")
    if len(labels) != n or len(machine) != n:
        raise RetainError(
            f"{where}: {n} signals but {len(labels)} labels and {len(machine)} machine entries"
        )
    bad = ~np.isfinite(signals.reshape(n, -1)).all(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad).tolist()
        raise RetainError(
            f"{where}: NaN/inf in signals of {len(rows)} row(s): {_fmt_rows(rows)}; "
            "drop or interpolate those windows"
        )
    y, label_names = _parse_labels(labels, where)
    mach = np.asarray([str(v) for v in np.asarray(machine).tolist()])
    names = tuple(sorted(set(mach.tolist())))
    lookup = {s: i for i, s in enumerate(names)}
    ids = np.array([lookup[s] for s in mach], dtype=np.int64)
    return VibrationRecords(
        np.ascontiguousarray(signals, dtype=np.float32), y, mach, names, ids, label_names
    )


def save_vibration(
    path: str | os.PathLike[str],
    signals: np.ndarray,
    labels: np.ndarray,
    machine: np.ndarray | Sequence[Any],
) -> Path:
    """Write ``signals [N, C, T]``, ``labels [N]``, ``machine [N]`` as the .npz that
    :func:`load_vibration` reads."""
    rec = _records(np.asarray(signals), np.asarray(labels), np.asarray(machine), str(path))
    out = Path(path)
    np.savez_compressed(out, signals=rec.signals, labels=rec.labels, machine=rec.machine)
    return out


def load_vibration(
    path: str | os.PathLike[str],
    signal_cols: Sequence[str] | None = None,
    label_col: str = "label",
    machine_col: str | None = "machine",
) -> VibrationRecords:
    """Load real windows from ``.npz`` or a table (CSV / Parquet), validated up front.

    * ``.npz``: keys ``signals`` [N, C, T] (or [N, T]), ``labels`` (or
      ``label_col``) [N], ``machine`` (or ``machine_col``) [N].
    * CSV / Parquet: one window per row; signal columns ``s0 .. s{T-1}`` (or
      ``signal_cols``), a label column and a machine-type column. One channel.

    ``machine_col=None`` puts every row in one machine type ``"0"``. Labels may
    be integers or names; names from :data:`FAULT_CLASSES` keep their index.
    """
    p = Path(path).expanduser()
    suffix = _suffix(p)
    if not p.exists():
        raise RetainError(f"{p}: file not found")
    if suffix == ".npz":
        try:
            z = np.load(p, allow_pickle=False)
        except Exception as e:  # zip errors, bad headers
            raise RetainError(f"{p}: cannot read as .npz ({e})") from e
        with z:
            keys = list(z.files)
            if "signals" not in keys:
                raise RetainError(f"{p}: no 'signals' array; keys present: {_fmt(keys)}")
            lab_key = next((k for k in ("labels", label_col) if k in keys), None)
            if lab_key is None:
                raise RetainError(f"{p}: no 'labels' (or {label_col!r}) array; keys: {_fmt(keys)}")
            sig = z["signals"]
            labels = z[lab_key]
            if machine_col is None:
                machine = np.zeros(len(sig), dtype=np.int64)
            else:
                mk = next((k for k in (machine_col, "machine") if k in keys), None)
                if mk is None:
                    raise RetainError(
                        f"{p}: no machine-type array {machine_col!r}; keys present: {_fmt(keys)}; "
                        "pass machine_col=None if all windows come from one machine type"
                    )
                machine = z[mk]
        return _records(sig, labels, machine, str(p))

    import pandas as pd

    df = read_table_file(p, suffix)
    cols = [str(c) for c in df.columns]
    df.columns = cols
    if len(df) == 0:
        raise RetainError(f"{p}: the table has no rows")
    numbered = sorted((c for c in cols if re.fullmatch(r"s\d+", c)), key=lambda c: int(c[1:]))
    others = [c for c in cols if c not in set(numbered)]
    available = _fmt(others) + (
        f" (plus {len(numbered)} signal columns {numbered[0]}..{numbered[-1]})" if numbered else ""
    )
    for what, col in (("label", label_col), ("machine-type", machine_col)):
        if col is not None and col not in cols:
            hint = " (or machine_col=None for a single machine type)" if what != "label" else ""
            raise RetainError(
                f"{p}: {what} column {col!r} not found; available columns: {available}. "
                f"Pass {what.split('-')[0]}_col=<name>{hint}"
            )
    if signal_cols is None:
        sig_cols = sorted(numbered, key=lambda c: int(c[1:]))
        if not sig_cols:
            raise RetainError(
                f"{p}: no signal columns named s0, s1, ...; available columns: {available}. "
                "Pass signal_cols=[...]"
            )
    else:
        sig_cols = [str(c) for c in signal_cols]
        missing = [c for c in sig_cols if c not in cols]
        if missing:
            raise RetainError(
                f"{p}: signal columns not found: {_fmt(missing)}; available: {_fmt(cols)}"
            )
    block = df[sig_cols]
    non_num = [c for c in sig_cols if not pd.api.types.is_numeric_dtype(block[c])]
    if non_num:
        raise RetainError(f"{p}: signal columns must be numeric; not numeric: {_fmt(non_num)}")
    for what, col in (("label", label_col), ("machine-type", machine_col)):
        if col is not None and df[col].isna().any():
            rows = np.flatnonzero(df[col].isna().to_numpy()).tolist()
            raise RetainError(f"{p}: missing {what} values in rows {_fmt_rows(rows)}")
    sig = block.to_numpy(dtype=np.float64)[:, None, :]
    machine = (
        np.zeros(len(df), dtype=np.int64) if machine_col is None else df[machine_col].to_numpy()
    )
    labels = df[label_col].to_numpy()
    if labels.dtype == object:
        labels = labels.astype(str)
    return _records(sig, labels, machine, str(p))

