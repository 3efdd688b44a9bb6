"""Signals in the store: windows of recordings in a ``.npz`` file instead of table rows.

The file holds ``x`` (float, ``[windows, channels, time]``, or ``[windows, time]`` for one
channel), and optionally ``label`` (text or integer class per window) and ``recording`` (the
recording each window was cut from, for the per-recording vote of
:meth:`~retain.store.store.Store.predict`). ``retain.vibration`` writes such files from a
recordings folder (``write_windows``); any ``np.savez`` with these names works.

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


@dataclass
class Windows:
    x: np.ndarray  # float32 [n, channels, time]
    label: np.ndarray | None
    recording: np.ndarray | None
    source: str


def is_windows(data: Any) -> bool:
    return isinstance(data, str | Path) and str(data).lower().endswith(WINDOW_SUFFIX)


def read_windows(path: str | Path) -> Windows:
    """The windows of a ``.npz`` file, checked: finite signals, one label per window."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataNotFoundError(f"windows file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (OSError, ValueError) as exc:
        raise RetainError(f"{path.name} is not a readable .npz file ({exc})") from None
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
