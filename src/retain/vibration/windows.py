"""Leak-free windows: each recording is cut by time, and no window crosses the cut.

Why: windows of one recording that overlap share samples, so a random train/test split of
them puts the same samples on both sides -- the known source of the ~100 % accuracies in
the bearing-diagnosis literature. Here the first ``train_fraction`` of every recording
trains and the rest tests; windows are taken inside each part only. ``validation=`` cuts the
training part once more (its last fraction validates), so settings are chosen without ever
looking at the test part.

Windows are strided views of the recordings (``Tensor.unfold``): nothing is copied until a
dataset's ``tensors`` are asked for, which is when they are batched.
"""

from __future__ import annotations

from bisect import bisect_right

import torch

from retain.data import LazyTensorDataset
from retain.errors import RetainError
from retain.vibration.recordings import Recording, RecordingSet

__all__ = ["Windows", "time_split", "windows_of"]


class Windows(LazyTensorDataset):
    """Windows ``[C, L]`` of several recordings; ``(window, label)`` per sample.

    ``parts[i]`` is a view ``[n_i, C, L]`` into one recording; ``recording`` and ``start``
    say, per window, which recording (its index in the set) and the first sample index.
    ``tensors`` copies the windows into one ``[N, C, L]`` tensor (the batching copy).
    """

    def __init__(self, parts: list[torch.Tensor], labels: torch.Tensor,
                 recording: torch.Tensor, start: torch.Tensor, length: int):
        super().__init__(self._stack, len(labels))
        self.parts, self.labels, self.recording, self.start = parts, labels, recording, start
        self.length = length
        self._offsets = [0]
        for p in parts:
            self._offsets.append(self._offsets[-1] + p.shape[0])

    def _stack(self) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.cat(self.parts), self.labels

    def __getitem__(self, i: int):
        i = int(i) + (len(self) if int(i) < 0 else 0)
        part = bisect_right(self._offsets, i) - 1
        return self.parts[part][i - self._offsets[part]], self.labels[i]


def windows_of(recording: Recording, begin: int, end: int, length: int, stride: int,
               what: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Windows of samples ``[begin, end)`` of a recording as a view ``[n, C, length]``, and
    the start index of each."""
    if end - begin < length:
        raise RetainError(f"{recording.path}: {what} has {end - begin} samples, shorter than "
                          f"one window of {length}; use a shorter window or a longer recording")
    view = recording.signal[:, begin:end].unfold(-1, length, stride).permute(1, 0, 2)
    return view, begin + stride * torch.arange(view.shape[0])


def time_split(recordings: RecordingSet, length: int, stride: int | None = None,
               train_fraction: float = 0.7, test_stride: int | None = None,
               validation: float | None = None,
               train_windows: int | None = None) -> tuple[Windows, Windows]:
    """``(train, test)`` windows: the first ``train_fraction`` of each recording trains, the
    rest tests; ``stride`` (default ``length // 4``) between training windows,
    ``test_stride`` (default ``stride``) between test windows.

    ``validation=0.2`` returns ``(train, validation)`` instead: the training part's last 20 %
    validates and the test part is not used at all. ``train_windows=k`` keeps only the first
    ``k`` training windows of each recording (how much real data a model needs); the test
    windows stay the same.
    """
    length = int(length)
    stride = int(stride or max(1, length // 4))
    test_stride = int(test_stride or stride)
    if length < 16 or stride < 1 or test_stride < 1:
        raise RetainError(f"need window length >= 16 and strides >= 1, got {length}, {stride}, "
                          f"{test_stride}")
    if not 0 < train_fraction < 1:
        raise RetainError(f"train_fraction must be in (0, 1), got {train_fraction}")
    if validation is not None and not 0 < validation < 1:
        raise RetainError(f"validation must be a fraction in (0, 1), got {validation}")
    if train_windows is not None and int(train_windows) < 1:
        raise RetainError(f"train_windows must be >= 1, got {train_windows}")
    sides: tuple[list, list] = ([], [])
    for i, rec in enumerate(recordings):
        n = rec.signal.shape[-1]
        if n < length:
            raise RetainError(f"{rec.path}: {n} samples, shorter than one window of {length}")
        cut = round(n * train_fraction)
        parts = ((0, cut, stride, f"its first {train_fraction:.0%}"),
                 (cut, n, test_stride, f"its last {1 - train_fraction:.0%}"))
        if validation is not None:
            inner = round(cut * (1 - validation))
            parts = ((0, inner, stride, "its training part before validation"),
                     (inner, cut, test_stride, "its validation part"))
        label = recordings.label_id(rec)
        for side, (begin, end, step, what) in zip(sides, parts, strict=True):
            view, starts = windows_of(rec, begin, end, length, step, what)
            if side is sides[0] and train_windows is not None:
                view, starts = view[: int(train_windows)], starts[: int(train_windows)]
            side.append((view, label, i, starts))
    return tuple(_windows(side, length) for side in sides)  # type: ignore[return-value]


def _windows(side: list, length: int) -> Windows:
    views = [v for v, *_ in side]
    labels = torch.cat([torch.full((len(v),), lab, dtype=torch.long) for v, lab, _, _ in side])
    rec = torch.cat([torch.full((len(v),), i, dtype=torch.long) for v, _, i, _ in side])
    starts = torch.cat([s for *_, s in side])
    return Windows(views, labels, rec, starts, length)
