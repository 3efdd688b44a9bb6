"""The envelope spectrum, the standard bearing-diagnosis feature, in numpy and as a torch module.

Band-pass around the resonance, take the magnitude of the analytic signal (Hilbert transform),
remove its mean, FFT (Randall & Antoni 2011). Fault impacts appear as lines at BPFO / BPFI /
(2x)BSF with sidebands at ``f_r`` (inner) or FTF (ball). :func:`envelope_spectrum` (numpy) and
:class:`EnvelopeSpectrum` (torch) compute the same thing.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from retain.errors import RetainError
from retain.vibration.physics import DEFAULT_FS

# --------------------------------------------------------------------------- envelope


def _analytic_weights(n: int, fs: float, band: tuple[float, float | None] | None) -> np.ndarray:
    """FFT weights giving the analytic signal (as scipy.signal.hilbert), band-limited."""
    w = np.zeros(n)
    w[0] = 1.0
    w[1 : (n + 1) // 2] = 2.0
    if n % 2 == 0:
        w[n // 2] = 1.0
    if band is not None:
        lo, hi = band
        f = np.abs(np.fft.fftfreq(n, 1.0 / fs))
        hi = fs / 2 if hi is None else hi
        if not 0 <= lo < hi:
            raise RetainError(f"band must satisfy 0 <= low < high, got {band}")
        w *= (f >= lo) & (f <= hi)
    return w


def _periodic_hann(n: int) -> np.ndarray:
    return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)


def envelope_spectrum(
    signals: np.ndarray | torch.Tensor,
    fs: float = DEFAULT_FS,
    band: tuple[float, float | None] | None = None,
    max_freq_hz: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Envelope spectrum along the last axis: the standard bearing-diagnosis feature.

    Band-pass (brick-wall, optional ``band=(low, high)`` Hz; ``high=None`` means
    Nyquist) to keep the resonance and drop shaft harmonics, Hilbert envelope
    ``|x + j H[x]|``, remove its mean, Hann window, ``|rFFT|`` scaled to
    amplitude. Returns ``(freqs, spectrum)``, truncated at ``max_freq_hz``.
    """
    x = signals.detach().cpu().numpy() if isinstance(signals, torch.Tensor) else signals
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 0 or x.shape[-1] < 4:
        raise RetainError(f"envelope_spectrum needs signals [..., T] with T >= 4, got {x.shape}")
    n = x.shape[-1]
    w = _analytic_weights(n, fs, band)
    env = np.abs(np.fft.ifft(np.fft.fft(x, axis=-1) * w, axis=-1))
    env -= env.mean(axis=-1, keepdims=True)
    win = _periodic_hann(n)
    spec = np.abs(np.fft.rfft(env * win, axis=-1)) * (2.0 / win.sum())
    freqs = np.fft.rfftfreq(n, 1.0 / fs)
    if max_freq_hz is not None:
        keep = freqs <= max_freq_hz
        freqs, spec = freqs[keep], spec[..., keep]
    return freqs, spec


class EnvelopeSpectrum(nn.Module):
    """Torch version of :func:`envelope_spectrum` so a model can take raw windows.

    Input ``[..., T]``; output ``[..., F]`` with the bins up to ``max_freq_hz``.
    Computed with ``torch.fft`` on the input's device; weights are cached per
    length. Not meant to be trained through (it is, but nothing needs it).
    """

    def __init__(
        self,
        max_freq_hz: float | None = 1000.0,
        fs: float = DEFAULT_FS,
        band: tuple[float, float | None] | None = None,
    ) -> None:
        super().__init__()
        self.max_freq_hz = max_freq_hz
        self.fs = float(fs)
        self.band = band
        self._cache: dict[tuple[int, str, torch.dtype], tuple[torch.Tensor, torch.Tensor]] = {}

    def n_bins(self, length: int) -> int:
        """Number of output bins for windows of ``length`` samples."""
        if self.max_freq_hz is None:
            return length // 2 + 1
        return min(length // 2 + 1, int(math.floor(self.max_freq_hz * length / self.fs)) + 1)

    def _weights(self, n: int, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        key = (n, str(x.device), x.dtype)
        if key not in self._cache:
            w = torch.as_tensor(_analytic_weights(n, self.fs, self.band), dtype=x.dtype)
            win = torch.as_tensor(_periodic_hann(n), dtype=x.dtype)
            self._cache[key] = (w.to(x.device), win.to(x.device))
        return self._cache[key]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[-1]
        x = x.float() if not torch.is_floating_point(x) else x
        w, win = self._weights(n, x)
        env = torch.fft.ifft(torch.fft.fft(x, dim=-1) * w, dim=-1).abs()
        env = env - env.mean(dim=-1, keepdim=True)
        spec = torch.fft.rfft(env * win, dim=-1).abs() * (2.0 / float(win.sum()))
        return spec[..., : self.n_bins(n)]

    def extra_repr(self) -> str:
        return f"max_freq_hz={self.max_freq_hz}, fs={self.fs:g}, band={self.band}"


