"""Signals in the store: windows of recordings in a ``.npz`` file, or a Parquet file with an
array column, instead of table rows.

The file holds ``x`` (float, ``[windows, channels, time]``, or ``[windows, time]`` for one
channel), and optionally ``label`` (text or integer class per window) and ``recording`` (the
recording each window was cut from, for the per-recording vote of
:meth:`~retain.store.store.Store.predict`). ``retain.vibration`` writes such files from a
recordings folder (``write_windows``); any ``np.savez`` with these names works, and so does a
Parquet file whose column ``x`` holds one array per row (``[time]`` or ``[channels][time]``),
beside ``label`` and ``recording`` columns.

>>> import numpy as np, tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "w.npz")
>>> np.savez(path, x=np.zeros((4, 256)), label=np.array(["normal"] * 2 + ["inner"] * 2))
>>> w = read_windows(path)
>>> w.x.shape, w.label.tolist()
((4, 1, 256), ['normal', 'normal', 'inner', 'inner'])
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from retain.errors import DataNotFoundError, RetainError

WINDOW_SUFFIX = ".npz"
PARQUET = (".parquet", ".pq")


@dataclass
class Windows:
    x: np.ndarray  # float32 [n, channels, time]
    label: np.ndarray | None
    recording: np.ndarray | None
    source: str


def is_windows(data: Any) -> bool:
    """Whether ``data`` names windows of signals: a ``.npz`` file, or a Parquet file whose
    column ``x`` holds arrays."""
    if not isinstance(data, str | Path):
        return False
    name = str(data).lower()
    return name.endswith(WINDOW_SUFFIX) or (name.endswith(PARQUET) and _array_column(data))


def read_windows(path: str | Path) -> Windows:
    """The windows of a ``.npz`` or Parquet file, checked: finite signals, one label per
    window."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataNotFoundError(f"windows file not found: {path}")
    arrays = _parquet_arrays(path) if path.name.lower().endswith(PARQUET) else _npz_arrays(path)
    if "x" not in arrays:
        raise RetainError(f"{path.name} has no array 'x' (windows [n, channels, time]); it "
                          f"has {sorted(arrays)}")
    x = arrays["x"]
    if x.ndim == 2:
        x = x[:, None, :]
    if x.ndim != 3 or len(x) == 0 or x.dtype.kind not in "fiu":
        raise RetainError(f"{path.name}: 'x' must be numbers [windows, channels, time] (or "
                          f"[windows, time]), got {x.dtype} {x.shape}")
    if not np.isfinite(x).all():
        raise RetainError(f"{path.name}: 'x' holds NaN or inf values")
    extra = {k: arrays.get(k) for k in ("label", "recording")}
    for key, value in extra.items():
        if value is not None and value.shape != (len(x),):
            raise RetainError(f"{path.name}: '{key}' must hold one value per window "
                              f"({len(x)}), got shape {value.shape}")
    recording = None if extra["recording"] is None else extra["recording"].astype(str)
    return Windows(x.astype(np.float32), extra["label"], recording, path.name)


def _npz_arrays(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    except (OSError, ValueError) as exc:
        raise RetainError(f"{path.name} is not a readable .npz file ({exc})") from None


def _array_column(path: str | Path) -> bool:
    """Whether the Parquet file's column ``x`` is a list column (its schema only is read)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        field = pq.read_schema(Path(path).expanduser()).field("x")
    except (OSError, KeyError, pa.ArrowException):
        return False  # no such file or column: read as a table, which says what is wrong
    return pa.types.is_list(field.type) or pa.types.is_large_list(field.type) or \
        pa.types.is_fixed_size_list(field.type)


def _parquet_arrays(path: Path) -> dict[str, np.ndarray]:
    import pandas as pd

    frame = pd.read_parquet(path)
    try:  # a cell of [channels][time] reads as an array of arrays
        x = np.stack([np.stack(list(c)) if c.dtype == object else c for c in frame["x"]])
    except (ValueError, TypeError) as exc:
        raise RetainError(f"{path.name}: the arrays of column 'x' must all have one shape "
                          f"([time] or [channels][time]) ({exc})") from None
    return {"x": x, **{k: frame[k].to_numpy() for k in ("label", "recording")
                       if k in frame.columns}}
