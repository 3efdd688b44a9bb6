"""Compact 1-D CNN for bearing-fault classification from vibration windows.

Why this shape: a wide, strided first convolution acts as a learned band-pass
around the structural resonance and cuts the sequence length early (the
"WDCNN" idea of Zhang et al. 2017, "A new deep learning model for fault
diagnosis with good anti-noise and domain adaptation ability on raw vibration
signals", Sensors 17(2):425); rectification and pooling turn it into an
envelope, and wider convolutions after it look for the impact rhythm.
No normalisation layers: BatchNorm's running statistics drift to the newest
task in continual learning and silently break old ones, and GroupNorm before
global pooling removes the impact energy the classifier needs (training stalls
at chance).

``features="envelope"`` puts :class:`~retain.vibration.signal.EnvelopeSpectrum`
first (Hilbert envelope -> FFT, the standard bearing-diagnosis feature), so the
network sees lines at BPFO/BPFI/BSF instead of raw ringing; it still takes raw
windows as input, so data pipelines do not change.
"""

from __future__ import annotations

import torch
from torch import nn

from retain.errors import RetainError
from retain.vibration.physics import DEFAULT_FS
from retain.vibration.signal import EnvelopeSpectrum

__all__ = ["VibrationCNN"]


class _MeanMax(nn.Module):
    """Global mean and max over time: how much impact energy, and how sharp the peaks."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x.mean(dim=-1), x.amax(dim=-1)], dim=1)


class _LogNorm(nn.Module):
    """log(1 + spectrum / its mean): compresses the range across machines and severities."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.log1p(x / (x.mean(dim=-1, keepdim=True) + 1e-8))


def _conv(c_in: int, c_out: int, kernel: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv1d(c_in, c_out, kernel, stride=stride, padding=kernel // 2), nn.ReLU()
    )


class VibrationCNN(nn.Module):
    """1-D CNN over raw windows ``[N, C, T]`` (or their envelope spectrum).

    ``length`` is the window length the model is built for; a different input
    length raises :class:`RetainError` (``None`` accepts any length -- the
    pooling makes the weights fit any length, but what a model learned at one
    length does not mean the same at another).

    ``features="raw"``: a strided wide convolution (learned band-pass around
    the resonance) -> ReLU -> average pooling, which together act as an envelope
    detector; two wider convolutions (~20 ms at 12 kHz, several impact periods)
    then see the impact rhythm; global mean and max over time feed the linear
    classifier, so the model is shift-invariant, as the impacts have no fixed
    phase in a window.

    ``features="envelope"``: the envelope spectrum up to ``max_freq_hz``
    (band-passed to ``envelope_band``, dropping shaft harmonics), log-scaled,
    one small convolution (line shape, harmonics next to each other), then
    the lines' positions are kept (adaptive max-pool to ``n_bins`` slots,
    linear layer) because *where* a line is tells the fault.

    No BatchNorm on purpose: its running statistics drift to the newest task in
    continual learning. No GroupNorm either: followed by global pooling it
    normalises away the impact energy that separates healthy from faulty.
    """

    def __init__(
        self,
        in_channels: int = 1,
        n_classes: int = 4,
        length: int | None = 2048,
        features: str = "raw",
        fs: float = DEFAULT_FS,
        width: int = 16,
        max_freq_hz: float = 1000.0,
        envelope_band: tuple[float, float | None] | None = (1000.0, None),
        n_bins: int = 128,
        dropout: float = 0.3,
    ) -> None:
        super().__init__()
        if features not in ("raw", "envelope"):
            raise RetainError(f"features must be 'raw' or 'envelope', got {features!r}")
        if in_channels < 1 or n_classes < 2 or width < 2:
            raise RetainError(
                f"need in_channels >= 1, n_classes >= 2, width >= 2; got "
                f"{in_channels}, {n_classes}, {width}"
            )
        self.in_channels = int(in_channels)
        self.n_classes = int(n_classes)
        self.length = None if length is None else int(length)
        self.features = features
        self.fs = float(fs)
        # every argument kept under its name, so a checkpoint rebuilds the model from its recipe
        self.width, self.max_freq_hz, self.n_bins = int(width), float(max_freq_hz), int(n_bins)
        self.envelope_band = None if envelope_band is None else tuple(envelope_band)
        self.dropout = float(dropout)
        w = int(width)
        if features == "raw":
            self.net = nn.Sequential(
                _conv(in_channels, w, 32, stride=4),  # band-pass + rectify ...
                nn.AvgPool1d(4),  # ... + low-pass = envelope at fs/16
                _conv(w, 2 * w, 15),
                _conv(2 * w, 4 * w, 15),
                _MeanMax(),
                nn.Linear(8 * w, n_classes),
            )
        else:
            self.net = nn.Sequential(
                EnvelopeSpectrum(max_freq_hz=max_freq_hz, fs=fs, band=envelope_band),
                _LogNorm(),
                _conv(in_channels, w, 3),
                nn.AdaptiveMaxPool1d(int(n_bins)),
                nn.Flatten(),
                nn.Dropout(dropout),
                nn.Linear(w * int(n_bins), n_classes),
            )

    def _check(self, x: torch.Tensor) -> None:
        # Shape attributes only: no device sync.
        if x.dim() != 3:
            raise RetainError(
                f"VibrationCNN expects signals [batch, channels, time], got shape {tuple(x.shape)}"
            )
        if x.shape[1] != self.in_channels:
            raise RetainError(f"model expects {self.in_channels} channel(s), got {x.shape[1]}")
        if self.length is not None and x.shape[2] != self.length:
            raise RetainError(f"model expects signals of length {self.length}, got {x.shape[2]}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        return self.net(x)

    def extra_repr(self) -> str:
        return f"features={self.features!r}, length={self.length}, fs={self.fs:g}"
