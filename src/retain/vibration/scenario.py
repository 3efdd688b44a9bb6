"""Streams of real recordings: new fault types, loads, fault sizes or any manifest column.

Why: the question an operator asks is "the model knows these faults at this load; now it
meets another one" -- one experience per value of a recording's column, the labels kept.
``by="fault"`` makes each fault type an experience of its own (class-incremental); any
other column (``load``, ``size``, ``machine``, ...) keeps all faults in every experience
(domain-incremental). Windows come from :func:`~retain.vibration.windows.time_split`, so
no test sample is ever trained on, and :func:`retain.scenarios.split_by` builds the stream.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from retain.errors import RetainError
from retain.scenarios import Stream, split_by
from retain.vibration.physics import DEFAULT_LENGTH
from retain.vibration.recordings import RecordingSet, load_recordings
from retain.vibration.windows import time_split

__all__ = ["recordings_stream", "group_keys"]


def group_keys(recordings: RecordingSet, by: str) -> list[Any]:
    """The value of column ``by`` for every recording (``fault`` is the label)."""
    keys = []
    for rec in recordings:
        if by not in rec.meta:
            columns = ", ".join(sorted(rec.meta))
            raise RetainError(f"{rec.path}: no column {by!r} to split by; it has {columns}")
        keys.append(rec.meta[by])
    return keys


def _order(recordings: RecordingSet, by: str, keys: list[Any]) -> list[Any]:
    if by == "fault":  # in class-id order: normal first, as a machine starts healthy
        return sorted(set(keys), key=recordings.classes.index)
    try:
        return sorted(set(keys))
    except TypeError:  # mixed types: keep first appearance
        return list(dict.fromkeys(keys))


def recordings_stream(
    data: str | os.PathLike[str] | RecordingSet,
    by: str = "fault",
    length: int = DEFAULT_LENGTH,
    stride: int | None = None,
    train_fraction: float = 0.7,
    fs: float | None = None,
    validation: float | None = None,
    n_experiences: int | None = None,
    channel: str | None = None,
    train_windows: int | None = None,
) -> Stream:
    """One experience per value of ``by`` (in sorted order; faults in class-id order).

    ``data`` is a folder of CWRU files, a manifest, or a loaded :class:`RecordingSet`;
    ``fs`` resamples to the model's rate. Each recording's first ``train_fraction`` trains,
    the rest tests (``validation=0.2``: the training part's last 20 % tests instead, for
    choosing settings). ``n_experiences`` keeps the first groups only; ``train_windows``
    the first windows of each recording's training part only.
    """
    recordings = data if isinstance(data, RecordingSet) else load_recordings(data, fs, channel)
    keys = group_keys(recordings, by)
    order = _order(recordings, by, keys)
    if n_experiences is not None:
        if not 1 <= int(n_experiences) <= len(order):
            raise RetainError(f"{by} has {len(order)} values {order}; --experiences must be "
                              f"1..{len(order)}, got {n_experiences}")
        order = order[: int(n_experiences)]
        keep = [r for r, k in zip(recordings, keys, strict=True) if k in order]
        recordings = RecordingSet(keep, recordings.fs, recordings.classes, recordings.resampled)
        keys = [k for k in keys if k in order]
    train, test = time_split(recordings, length, stride, train_fraction, validation=validation,
                             train_windows=train_windows)
    per_window = np.array(keys, dtype=object)
    train_keys = per_window[train.recording.numpy()].tolist()
    test_keys = per_window[test.recording.numpy()].tolist()
    stream = split_by(train, np.array(train_keys), test, test_key=np.array(test_keys),
                      order=order)
    kind = "class" if by == "fault" else "domain"
    for e, g in zip(stream, order, strict=True):
        e.name = f"{by}={g}"
    stream.name = f"recordings by {by} ({kind}-incremental)"
    stream.n_classes = len(recordings.classes)
    stream.info.update(
        by=by, groups=order, classes=list(recordings.classes), fs=recordings.fs,
        length=int(length), description=recordings.describe(),
        files=[r.path.name for r in recordings], resampled=list(recordings.resampled),
        split=("validation" if validation else "test") + f", train_fraction {train_fraction}",
        model="vibration-cnn", model_args={"features": "envelope", "fs": recordings.fs})
    return stream
