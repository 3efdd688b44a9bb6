"""Read one recording file into an array ``[C, T]`` and the sampling rate it declares.

Why one function per file type: each format keeps channels and rates in its own place
(``.mat`` variables, ``.wav`` header, ``.npz`` keys, table columns), and a user's file that
does not hold what was asked for must fail with the names it *does* hold.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from retain.datasets.files import TABLE_SUFFIXES, file_suffix, read_table_file
from retain.errors import RetainError
from retain.vibration.cwru import cwru_file, variable

__all__ = ["SUFFIXES", "read_signal"]

SUFFIXES = (".mat", ".wav", ".npy", ".npz", *TABLE_SUFFIXES)
Channels = Sequence[str | int] | None


def _names(names: Sequence[object]) -> str:
    return ", ".join(repr(str(n)) for n in names) or "none"


def _pick(path: Path, arrays: dict[str, np.ndarray], channels: Channels, what: str
          ) -> np.ndarray:
    """Named arrays (variables, keys, columns) as channels ``[C, T]``; a file holding one
    signal needs no name, a file holding several must be told which."""
    if channels is None:
        if len(arrays) == 1:
            channels = list(arrays)
        else:
            raise RetainError(f"{path}: {len(arrays)} {what}s ({_names(arrays)}); say which "
                              "to use with a channel column in the manifest (or channel=...)")
    picked = []
    for ch in channels:
        name = str(ch)
        if name not in arrays:
            raise RetainError(f"{path}: no {what} {name!r}; it has {_names(arrays)}")
        picked.append(np.asarray(arrays[name]).reshape(-1))
    if len({len(a) for a in picked}) > 1:
        raise RetainError(f"{path}: channels {_names(channels)} have different lengths")
    return np.stack(picked)


def _mat(path: Path, channels: Channels) -> tuple[np.ndarray, float | None]:
    from scipy.io import loadmat

    try:
        content = loadmat(path)
    except Exception as e:  # scipy raises several types for a file that is not MAT
        raise RetainError(f"{path}: not a readable .mat file ({type(e).__name__}: {e})") from e
    arrays = {k: v for k, v in content.items() if not k.startswith("__")
              and isinstance(v, np.ndarray) and v.dtype.kind in "iuf" and v.size > 1}
    known = cwru_file(path)
    if known is not None and (channels is None or all(str(c).upper() in ("DE", "FE", "BA")
                                                      for c in channels)):
        names = [variable(known.number, c) for c in (channels or ["DE"])]
        missing = [n for n in names if n not in arrays]
        if missing:
            present = sorted(k for k in content if not k.startswith("__"))
            raise RetainError(f"{path}: no variable {missing[0]!r} (CWRU file {known.number}); "
                              f"it has {_names(present)}")
        return _pick(path, arrays, names, "variable"), float(known.fs)
    return _pick(path, arrays, channels, "variable"), None


def _wav(path: Path, channels: Channels) -> tuple[np.ndarray, float]:
    from scipy.io import wavfile

    try:
        rate, data = wavfile.read(path)
    except Exception as e:
        raise RetainError(f"{path}: not a readable .wav file ({type(e).__name__}: {e})") from e
    if data.dtype.kind in "iu":  # PCM: scale to [-1, 1) so files of any bit depth compare
        info = np.iinfo(data.dtype)
        data = (data.astype(np.float64) - (info.max + 1 if data.dtype.kind == "u" else 0)
                ) / (info.max + 1)
    data = data.reshape(len(data), -1).T  # [C, T]
    arrays = {str(i): data[i] for i in range(len(data))}
    return _pick(path, arrays, channels, "channel"), float(rate)


def _npy(path: Path, channels: Channels) -> tuple[np.ndarray, None]:
    try:
        data = np.load(path, allow_pickle=False)
    except Exception as e:
        raise RetainError(f"{path}: not a readable .npy file ({type(e).__name__}: {e})") from e
    if data.ndim not in (1, 2):
        raise RetainError(f"{path}: a recording is [T] or [T, channels], got shape {data.shape}")
    data = data.reshape(len(data), -1).T
    arrays = {str(i): data[i] for i in range(len(data))}
    return _pick(path, arrays, channels, "column"), None


def _npz(path: Path, channels: Channels) -> tuple[np.ndarray, float | None]:
    try:
        with open(path, "rb") as f, np.load(f, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as e:
        raise RetainError(f"{path}: not a readable .npz file ({type(e).__name__}: {e})") from e
    fs = arrays.pop("fs", None)
    return _pick(path, arrays, channels, "array"), None if fs is None else float(fs)


def _table(path: Path, channels: Channels, suffix: str) -> tuple[np.ndarray, None]:
    frame = read_table_file(path, suffix)
    arrays = {str(c): frame[c].to_numpy() for c in frame.columns
              if frame[c].dtype.kind in "iuf"}
    if not arrays:
        raise RetainError(f"{path}: no numeric column; it has {_names(frame.columns)}")
    return _pick(path, arrays, channels, "column"), None


def read_signal(path: str | Path, channels: Channels = None) -> tuple[np.ndarray, float | None]:
    """``(signal float64 [C, T], rate in Hz or None)`` of one recording file.

    ``.mat``: variables (CWRU files by number and channel, ``X209_DE_time``); ``.wav``: the
    header's rate, channels ``0, 1, ...``; ``.npy``: ``[T]`` or ``[T, C]``; ``.npz``: one
    array per channel (an ``fs`` entry is the rate); CSV/Parquet: one column per channel.
    """
    p = Path(path)
    suffix = file_suffix(p)
    if suffix not in SUFFIXES:
        raise RetainError(f"{p}: unknown file type {suffix or '(none)'!r}; recordings can be "
                          f"{', '.join(SUFFIXES)}")
    if not p.is_file():
        raise RetainError(f"{p}: file not found")
    if suffix == ".mat":
        data, fs = _mat(p, channels)
    elif suffix == ".wav":
        data, fs = _wav(p, channels)
    elif suffix == ".npy":
        data, fs = _npy(p, channels)
    elif suffix == ".npz":
        data, fs = _npz(p, channels)
    else:
        data, fs = _table(p, channels, suffix)
    if data.dtype.kind not in "iuf":
        raise RetainError(f"{p}: the signal must be numeric, got dtype {data.dtype}")
    return data.astype(np.float64, copy=False), fs
