"""Simulated vibration windows per machine type and fault class, from :mod:`.physics`.

Impacts at the characteristic fault frequencies, each ringing the housing resonance, plus shaft
harmonics, machine tones, roughness impacts and noise; see :mod:`retain.vibration.physics` for
the signal model and its references. :func:`make_dataset` assembles train/test sets over machine
types.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import TensorDataset

from retain.errors import RetainError
from retain.vibration.physics import (
    DEFAULT_FS,
    DEFAULT_LENGTH,
    FAULT_CLASSES,
    MACHINE_TYPES,
    MachineType,
    class_index,
    get_machine,
)

# Fault impacts pass through more interfaces (rotating ring, rolling element)
# before reaching a housing-mounted sensor for inner-race and ball faults, so
# they arrive weaker than outer-race impacts.
_PATH_GAIN = {1: 0.8, 2: 1.0, 3: 0.7}
_BALL_INNER_STRIKE = 0.55  # ball-defect strike on the inner race vs outer race
_LOAD_ZONE_FLOOR = 0.2  # impact strength outside the load zone (preload, clearance)
_IMPACT_SCATTER = 0.1  # relative scatter of individual impact amplitudes
_ROUGHNESS_RATE_HZ = 300.0  # weak random impacts from surface roughness
_ROUGHNESS_AMP = 0.06

# --------------------------------------------------------------------------- simulation


def _machine_key(m: MachineType) -> int:
    """Stable per-machine stream id: independent of the order machines are listed in."""
    return zlib.crc32(m.name.encode("utf-8"))


def _impulse_response(m: MachineType, fs: float) -> np.ndarray:
    """Decaying ringing of the resonance, cut at exp(-7) and scaled to unit peak."""
    wn = 2 * math.pi * m.resonance_hz
    wd = wn * math.sqrt(1 - m.damping**2)
    n = max(8, int(math.ceil(7.0 / (m.damping * wn) * fs)))
    t = np.arange(n) / fs
    h = np.exp(-m.damping * wn * t) * np.sin(wd * t)
    return h / np.abs(h).max()


def _load_zone(theta: np.ndarray, exponent: float) -> np.ndarray:
    """Impact strength vs angle from the load direction (Stribeck, eps = 0.5)."""
    q = np.clip(np.cos(theta), 0.0, None) ** exponent
    return _LOAD_ZONE_FLOOR + (1 - _LOAD_ZONE_FLOOR) * q


def _severity(
    severity: float | tuple[float, float], n: int, rng: np.random.Generator
) -> np.ndarray:
    if isinstance(severity, (tuple, list)):
        lo, hi = float(severity[0]), float(severity[1])
        if not 0 <= lo <= hi:
            raise RetainError(f"severity range must satisfy 0 <= lo <= hi, got {severity}")
        return rng.uniform(lo, hi, n)
    if float(severity) < 0:
        raise RetainError(f"severity must be >= 0, got {severity}")
    return np.full(n, float(severity))


def _simulate_class(
    m: MachineType,
    label: int,
    n: int,
    length: int,
    fs: float,
    rng: np.random.Generator,
    severity: float | tuple[float, float],
) -> np.ndarray:
    """``n`` windows of one class, float32 [n, length]; all windows at once (vectorised)."""
    h = _impulse_response(m, fs)
    pre = len(h)  # pre-roll so ringing from impacts before the window leaks in
    L = length + pre
    f_r = m.shaft_hz * (1 + m.speed_jitter * rng.standard_normal(n))  # [n]
    t = (np.arange(length) / fs)[None, :]
    rows = np.arange(n)[:, None]
    train = np.zeros(n * L)

    # Weak random impacts from roughness: present in healthy bearings too.
    counts = rng.poisson(_ROUGHNESS_RATE_HZ * L / fs, n)
    kmax = max(int(counts.max()), 1)
    pos = rng.integers(0, L, (n, kmax))
    amp = _ROUGHNESS_AMP * m.load**0.5 * np.abs(rng.standard_normal((n, kmax)))
    keep = np.arange(kmax)[None, :] < counts[:, None]
    train += np.bincount((rows * L + pos)[keep], weights=amp[keep], minlength=n * L)

    if label != 0:
        ratio = {1: m.bpfi, 2: m.bpfo, 3: 2 * m.bsf}[label] / m.shaft_hz
        period = fs / (ratio * f_r)  # samples between impacts, [n]
        k = int(math.ceil(L / period.min() * (1 + 6 * m.slip))) + 2
        steps = period[:, None] * (1 + m.slip * rng.standard_normal((n, k)))
        steps = np.clip(steps, 0.5 * period[:, None], None)
        start = rng.uniform(0, 1, n) * period
        times = start[:, None] + np.concatenate(
            [np.zeros((n, 1)), np.cumsum(steps[:, :-1], axis=1)], axis=1
        )  # [n, k] in buffer samples
        sev = _severity(severity, n, rng)
        amp = (sev * m.load**0.5 * _PATH_GAIN[label])[:, None] * np.clip(
            1 + _IMPACT_SCATTER * rng.standard_normal((n, k)), 0, None
        )
        t_imp = (times - pre) / fs
        phase0 = rng.uniform(0, 2 * np.pi, n)[:, None]
        if label == 1:  # defect turns with the shaft through the load zone
            amp = amp * _load_zone(
                2 * np.pi * f_r[:, None] * t_imp + phase0, m.bearing.load_exponent
            )
        elif label == 3:  # element rides with the cage; alternates inner/outer strike
            ftf = f_r[:, None] * (m.ftf / m.shaft_hz)
            amp = amp * _load_zone(2 * np.pi * ftf * t_imp + phase0, m.bearing.load_exponent)
            parity = (np.arange(k)[None, :] + rng.integers(0, 2, (n, 1))) % 2
            amp = amp * np.where(parity == 0, 1.0, _BALL_INNER_STRIKE)
        idx = np.floor(times).astype(np.int64)
        keep = idx < L
        train += np.bincount((rows * L + idx)[keep], weights=amp[keep], minlength=n * L)

    # float32 from here on: halves the cost of the FFTs, sines and noise.
    from scipy import fft as sfft  # imported here: `import retain.vibration` needs no scipy

    nfft = sfft.next_fast_len(L + len(h) - 1, real=True)
    spec = sfft.rfft(train.reshape(n, L).astype(np.float32), nfft, axis=1)
    spec *= sfft.rfft(h.astype(np.float32), nfft)[None, :]
    x = sfft.irfft(spec, nfft, axis=1)[:, pre : pre + length]

    # Shaft harmonics: imbalance (1x, ~speed^2) and misalignment (2x, 3x, ~load).
    harm = (m.imbalance * (m.shaft_hz / 30.0) ** 2, 0.12 * m.load, 0.05 * m.load)
    tones = [(1.0, harm[0]), (2.0, harm[1]), (3.0, harm[2]), *m.tones]
    omega_t = ((2 * np.pi * f_r)[:, None] * t).astype(np.float32)  # shaft angle [n, length]
    for mult, a in tones:
        a_i = a * np.clip(1 + 0.2 * rng.standard_normal((n, 1)), 0, None)
        ph = rng.uniform(0, 2 * np.pi, (n, 1))
        x += a_i.astype(np.float32) * np.sin(np.float32(mult) * omega_t + ph.astype(np.float32))
    x += np.float32(m.noise_std) * rng.standard_normal((n, length), dtype=np.float32)
    return x


def generate(
    machine: MachineType | str | int = 0,
    n_per_class: int = 64,
    length: int = DEFAULT_LENGTH,
    fs: float = DEFAULT_FS,
    seed: int = 0,
    severity: float | tuple[float, float] = (1.0, 2.0),
    classes: Sequence[int | str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Simulate accelerometer windows of one machine type.

    Returns ``(signals, labels)``: float32 ``[N, 1, length]`` and int64 ``[N]``,
    ordered class by class (``classes`` defaults to all four, see
    :data:`FAULT_CLASSES`). ``severity`` scales the fault impacts (a float, or a
    ``(lo, hi)`` range drawn per window). Deterministic: the same
    ``(machine, seed)`` always gives the same arrays, and each machine type draws
    from its own stream (``numpy.random.SeedSequence([seed, crc32(name)])``).
    """
    m = get_machine(machine)
    if int(n_per_class) < 1 or int(length) < 16:
        raise RetainError(f"need n_per_class >= 1 and length >= 16, got {n_per_class}, {length}")
    if m.resonance_hz >= fs / 2:
        raise RetainError(
            f"machine {m.name!r} rings at {m.resonance_hz:g} Hz, above the Nyquist "
            f"frequency {fs / 2:g} Hz of fs={fs:g}; use fs > {2 * m.resonance_hz:g}"
        )
    cls = [class_index(c) for c in (range(len(FAULT_CLASSES)) if classes is None else classes)]
    if len(set(cls)) != len(cls) or not cls:
        raise RetainError(f"classes must be distinct and non-empty, got {classes}")
    children = np.random.SeedSequence([int(seed), _machine_key(m)]).spawn(len(FAULT_CLASSES))
    xs, ys = [], []
    for c in cls:
        rng = np.random.default_rng(children[c])
        xs.append(_simulate_class(m, c, int(n_per_class), int(length), float(fs), rng, severity))
        ys.append(np.full(int(n_per_class), c, dtype=np.int64))
    signals = np.concatenate(xs)[:, None, :]
    return signals, np.concatenate(ys)



# --------------------------------------------------------------------------- datasets


@dataclass
class VibrationData:
    """Train/test split over several machine types; each is a ``(x, y, machine_id)`` dataset.

    ``machine_id`` is the position in ``machines`` (the task id for continual
    learning). :meth:`for_machine` returns the part belonging to one type.
    """

    train: TensorDataset
    test: TensorDataset
    machines: tuple[MachineType, ...]
    fs: float
    length: int
    classes: tuple[str, ...] = field(default=FAULT_CLASSES)

    def for_machine(self, machine: int | str) -> tuple[TensorDataset, TensorDataset]:
        """``(train, test)`` restricted to one machine type (by task id or name)."""
        if isinstance(machine, str):
            names = [m.name for m in self.machines]
            if machine not in names:
                raise RetainError(f"machine {machine!r} not in this dataset: {names}")
            i = names.index(machine)
        else:
            i = int(machine)
            if not 0 <= i < len(self.machines):
                raise RetainError(f"machine id {i} out of range 0..{len(self.machines) - 1}")

        def part(ds: TensorDataset) -> TensorDataset:
            keep = ds.tensors[2] == i
            return TensorDataset(*(t[keep] for t in ds.tensors))

        return part(self.train), part(self.test)


def make_dataset(
    machine_types: int | Sequence[MachineType | str | int] = 5,
    n_per_class: int = 64,
    length: int = DEFAULT_LENGTH,
    fs: float = DEFAULT_FS,
    seed: int = 0,
    test_fraction: float = 0.25,
    severity: float | tuple[float, float] = (1.0, 2.0),
) -> VibrationData:
    """Simulate several machine types and split each, stratified by class, into train/test.

    ``machine_types`` is a count (the first k presets) or a list of presets /
    names / indices / :class:`MachineType`. Why one call: a continual-learning
    run needs every task with the same window length, sampling rate and split.
    """
    if isinstance(machine_types, (int, np.integer)) and not isinstance(machine_types, bool):
        if not 1 <= int(machine_types) <= len(MACHINE_TYPES):
            raise RetainError(f"machine_types must be 1..{len(MACHINE_TYPES)}, got {machine_types}")
        machines = tuple(MACHINE_TYPES[: int(machine_types)])
    else:
        machines = tuple(get_machine(m) for m in machine_types)
    if not machines:
        raise RetainError("make_dataset needs at least one machine type")
    if not 0 < test_fraction < 1:
        raise RetainError(f"test_fraction must be in (0, 1), got {test_fraction}")
    n_test = int(round(n_per_class * test_fraction))
    if n_test < 1 or n_test >= n_per_class:
        raise RetainError(
            f"n_per_class={n_per_class} with test_fraction={test_fraction} leaves an empty split"
        )
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("xtr", "ytr", "mtr", "xte", "yte", "mte")}
    for i, m in enumerate(machines):
        x, y = generate(m, n_per_class, length, fs, seed, severity)
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), _machine_key(m), 1]))
        is_test = np.zeros(len(y), dtype=bool)
        for c in np.unique(y):
            idx = np.flatnonzero(y == c)
            is_test[rng.choice(idx, n_test, replace=False)] = True
        order_tr = rng.permutation(np.flatnonzero(~is_test))
        order_te = np.flatnonzero(is_test)
        for tag, order in (("tr", order_tr), ("te", order_te)):
            parts["x" + tag].append(x[order])
            parts["y" + tag].append(y[order])
            parts["m" + tag].append(np.full(len(order), i, dtype=np.int64))

    def ds(tag: str) -> TensorDataset:
        return TensorDataset(
            torch.from_numpy(np.concatenate(parts["x" + tag])),
            torch.from_numpy(np.concatenate(parts["y" + tag])),
            torch.from_numpy(np.concatenate(parts["m" + tag])),
        )

    return VibrationData(ds("tr"), ds("te"), machines, float(fs), int(length))


