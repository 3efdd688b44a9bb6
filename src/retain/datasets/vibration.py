r"""Physically grounded rolling-element-bearing vibration signals, plus loaders for real data.

Why: bearing-fault diagnosis is the textbook case of a model that must keep
learning -- every new machine type (speed, bearing, structure) is a new task,
and a classifier trained on one machine does not transfer for free. This module
simulates such machines from the physics so that the effect can be studied
without downloading anything, and loads users' own recordings in the same form.

Signal model (per window, one accelerometer channel)
----------------------------------------------------
A localised defect produces an impact each time a rolling element passes it.
Each impact excites a structural resonance of the housing, seen by the
accelerometer as exponentially decaying ringing (McFadden & Smith 1984;
Randall & Antoni 2011)::

    x(t) = sum_k A_k h(t - t_k) + sum_{m=1..3} a_m sin(2 pi m f_r t + phi_m) + tones + n(t)
    h(t) = exp(-zeta omega_n t) sin(omega_d t),   omega_d = omega_n sqrt(1 - zeta^2)

with ``omega_n = 2 pi f_n`` the resonance and ``zeta`` its damping ratio.

The impacts repeat at the characteristic fault frequencies, which follow from
the bearing geometry -- ``n`` rolling elements of diameter ``d`` on pitch
diameter ``D`` with contact angle ``phi``, shaft (inner ring) speed ``f_r``, outer
ring fixed (Randall & Antoni 2011, Eqs. 1-4)::

    BPFO = n f_r / 2 (1 - d/D cos phi)              ball pass frequency, outer race
    BPFI = n f_r / 2 (1 + d/D cos phi)              ball pass frequency, inner race
    BSF  = D f_r / (2 d) (1 - (d/D cos phi)^2)      ball (roller) spin frequency
    FTF  = f_r / 2 (1 - d/D cos phi)                fundamental train (cage) frequency

* **Outer race** (class 2): the defect is stationary in the load zone, so the
  impacts at BPFO all have (nearly) the same amplitude -- no modulation.
* **Inner race** (class 1): the defect rotates with the shaft through the load
  zone, so the impact amplitude is modulated at ``f_r``. The load-zone shape is
  Stribeck's distribution used by McFadden & Smith (1984):
  ``q(theta) = max(0, 1 - (1 - cos theta) / (2 eps))^p`` with ``eps = 0.5`` and
  ``p = 3/2`` (ball) or ``10/9`` (roller); amplitude ``A = floor + (1 - floor) q``.
* **Ball / roller** (class 3): a defect on a rolling element strikes the inner
  and the outer race once each per spin revolution, so impacts repeat at
  **2 x BSF**; the two strikes reach the sensor through different paths, so they
  alternate in strength, which also puts a line at BSF (odd harmonics) in the
  envelope spectrum. The element travels with the cage through the load zone, so
  the amplitude is modulated at FTF.
* **Slip**: rolling elements slip, so the impact spacing fluctuates randomly by
  1-2 % (Randall & Antoni 2011); intervals are drawn as
  ``T (1 + slip * N(0, 1))`` -- which is why the signal is only
  *pseudo*-cyclostationary and why envelope analysis, not plain FFT, finds it.
* **Background**: shaft harmonics 1x (imbalance, grows with speed^2), 2x, 3x
  (misalignment, grows with load); machine-specific tones (blade, vane, gear mesh
  passing) at multiples of ``f_r``; random weak roughness impacts (Poisson) that
  excite the same resonance in healthy bearings too; white Gaussian noise at the
  machine's noise level.

Each :class:`MachineType` has its own speed, bearing, resonance, damping, load,
noise and tones, so the impact period, the ringing frequency and the background
all change between machine types -- a model trained on one type does not
transfer for free.

The diagnostic feature is the **envelope spectrum** (Randall & Antoni 2011):
band-pass around the resonance, take the magnitude of the analytic
signal (Hilbert transform), remove its mean, FFT. Fault impacts appear as lines
at BPFO / BPFI / (2x)BSF with sidebands at ``f_r`` (inner) or FTF (ball).
:func:`envelope_spectrum` (numpy) and :class:`EnvelopeSpectrum` (torch module)
compute the same thing.

References
----------
* R. B. Randall, J. Antoni, "Rolling element bearing diagnostics -- A tutorial",
  Mechanical Systems and Signal Processing 25 (2011) 485-520.
* P. D. McFadden, J. D. Smith, "Model for the vibration produced by a single point
  defect in a rolling element bearing", J. Sound and Vibration 96 (1984) 69-82.
* T. A. Harris, *Rolling Bearing Analysis* (load-zone / Stribeck distribution).
* Bearing data: 6205-2RS JEM SKF and 6203-2RS (Case Western Reserve University
  Bearing Data Center), Rexnord ZA-2115 (NASA/IMS bearing data set), catalogue
  values for the others.
"""

from __future__ import annotations

import math
import os
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import fft as sfft
from torch import nn
from torch.utils.data import TensorDataset

from retain.errors import RetainError

__all__ = [
    "FAULT_CLASSES",
    "MACHINE_TYPES",
    "Bearing",
    "EnvelopeSpectrum",
    "MachineType",
    "VibrationData",
    "VibrationRecords",
    "envelope_spectrum",
    "fault_frequencies",
    "generate",
    "get_machine",
    "load_vibration",
    "make_dataset",
    "plot_examples",
    "save_vibration",
]

FAULT_CLASSES: tuple[str, ...] = ("normal", "inner_race", "outer_race", "ball")
DEFAULT_FS = 12_000
DEFAULT_LENGTH = 2048

# Fault impacts pass through more interfaces (rotating ring, rolling element)
# before reaching a housing-mounted sensor for inner-race and ball faults, so
# they arrive weaker than outer-race impacts.
_PATH_GAIN = {1: 0.8, 2: 1.0, 3: 0.7}
_BALL_INNER_STRIKE = 0.55  # ball-defect strike on the inner race vs outer race
_LOAD_ZONE_FLOOR = 0.2  # impact strength outside the load zone (preload, clearance)
_IMPACT_SCATTER = 0.1  # relative scatter of individual impact amplitudes
_ROUGHNESS_RATE_HZ = 300.0  # weak random impacts from surface roughness
_ROUGHNESS_AMP = 0.06


# --------------------------------------------------------------------------- geometry


@dataclass(frozen=True)
class Bearing:
    """Rolling-element bearing geometry; fixes where the fault lines fall in the spectrum.

    Diameters in mm (only their ratio matters). ``kind`` is ``"ball"`` or
    ``"roller"`` and sets the load-distribution exponent (3/2 or 10/9).
    """

    n_balls: int
    ball_diameter: float
    pitch_diameter: float
    contact_angle_deg: float = 0.0
    name: str = ""
    kind: str = "ball"

    def __post_init__(self) -> None:
        if int(self.n_balls) != self.n_balls or self.n_balls < 3:
            raise RetainError(f"Bearing needs an integer n_balls >= 3, got {self.n_balls!r}")
        if not 0 < self.ball_diameter < self.pitch_diameter:
            raise RetainError(
                "Bearing needs 0 < ball_diameter < pitch_diameter, got "
                f"d={self.ball_diameter}, D={self.pitch_diameter}"
            )
        if not 0 <= self.contact_angle_deg < 90:
            raise RetainError(f"contact_angle_deg must be in [0, 90), got {self.contact_angle_deg}")
        if self.kind not in ("ball", "roller"):
            raise RetainError(f"Bearing kind must be 'ball' or 'roller', got {self.kind!r}")

    @property
    def ratio(self) -> float:
        """``d/D cos(phi)``, the quantity all fault frequencies depend on."""
        return (
            self.ball_diameter
            / self.pitch_diameter
            * math.cos(math.radians(self.contact_angle_deg))
        )

    @property
    def load_exponent(self) -> float:
        """Stribeck load-distribution exponent: 3/2 for point contact, 10/9 for line."""
        return 1.5 if self.kind == "ball" else 10.0 / 9.0

    def bpfo(self, shaft_hz: float) -> float:
        """Ball pass frequency, outer race: n f_r / 2 (1 - d/D cos phi)."""
        return self.n_balls / 2 * shaft_hz * (1 - self.ratio)

    def bpfi(self, shaft_hz: float) -> float:
        """Ball pass frequency, inner race: n f_r / 2 (1 + d/D cos phi)."""
        return self.n_balls / 2 * shaft_hz * (1 + self.ratio)

    def bsf(self, shaft_hz: float) -> float:
        """Ball spin frequency: D / (2d) f_r (1 - (d/D cos phi)^2)."""
        return self.pitch_diameter / (2 * self.ball_diameter) * shaft_hz * (1 - self.ratio**2)

    def ftf(self, shaft_hz: float) -> float:
        """Fundamental train (cage) frequency: f_r / 2 (1 - d/D cos phi)."""
        return shaft_hz / 2 * (1 - self.ratio)


@dataclass(frozen=True)
class MachineType:
    """One kind of machine: a task. Everything that changes the signal between machines.

    ``load`` is the radial load relative to nominal (scales impacts and 2x/3x
    shaft harmonics); ``imbalance`` is the 1x amplitude at 30 Hz (grows with
    speed^2); ``tones`` are ``(multiple of f_r, amplitude)`` pairs such as blade
    or gear-mesh passing; ``speed_jitter`` is the window-to-window relative
    speed scatter and ``slip`` the relative scatter of impact spacing.
    """

    name: str
    shaft_hz: float
    bearing: Bearing
    resonance_hz: float
    damping: float
    load: float
    noise_std: float
    imbalance: float = 0.2
    tones: tuple[tuple[float, float], ...] = ()
    speed_jitter: float = 0.005
    slip: float = 0.01
    description: str = ""

    def __post_init__(self) -> None:
        if not self.shaft_hz > 0:
            raise RetainError(f"shaft_hz must be > 0, got {self.shaft_hz}")
        if not self.resonance_hz > 0:
            raise RetainError(f"resonance_hz must be > 0, got {self.resonance_hz}")
        if not 0 < self.damping < 1:
            raise RetainError(f"damping (ratio) must be in (0, 1), got {self.damping}")
        if self.load <= 0 or self.noise_std < 0:
            raise RetainError(
                f"need load > 0 and noise_std >= 0, got {self.load}, {self.noise_std}"
            )
        if not 0 <= self.slip < 0.2 or not 0 <= self.speed_jitter < 0.2:
            raise RetainError("slip and speed_jitter are relative scatters; keep them < 0.2")

    @property
    def bpfo(self) -> float:
        return self.bearing.bpfo(self.shaft_hz)

    @property
    def bpfi(self) -> float:
        return self.bearing.bpfi(self.shaft_hz)

    @property
    def bsf(self) -> float:
        return self.bearing.bsf(self.shaft_hz)

    @property
    def ftf(self) -> float:
        return self.bearing.ftf(self.shaft_hz)

    def fault_frequency(self, label: int | str) -> float | None:
        """Impact repetition rate for a class: BPFI, BPFO, 2 x BSF; None for normal."""
        c = _class_index(label)
        return {0: None, 1: self.bpfi, 2: self.bpfo, 3: 2 * self.bsf}[c]

    def frequencies(self) -> dict[str, float]:
        """All characteristic frequencies in Hz, for plots and reports."""
        return fault_frequencies(self)


def fault_frequencies(machine: MachineType | str | int) -> dict[str, float]:
    """Characteristic frequencies (Hz) of a machine type: shaft, FTF, BSF, 2xBSF, BPFO, BPFI."""
    m = get_machine(machine)
    return {
        "shaft": m.shaft_hz,
        "ftf": m.ftf,
        "bsf": m.bsf,
        "2xbsf": 2 * m.bsf,
        "bpfo": m.bpfo,
        "bpfi": m.bpfi,
    }


_B6205 = Bearing(9, 7.94, 39.04, 0.0, "6205-2RS JEM SKF")
_B6203 = Bearing(8, 6.746, 28.5, 0.0, "6203-2RS")
_B6308 = Bearing(8, 15.081, 65.0, 0.0, "6308")
_BNU206 = Bearing(13, 9.0, 46.0, 0.0, "NU206 (cylindrical roller)", kind="roller")
_B7206 = Bearing(13, 9.525, 46.0, 40.0, "7206 B (angular contact)")
_B6312 = Bearing(8, 22.225, 95.0, 0.0, "6312")
_BZA2115 = Bearing(16, 8.407, 71.5, 15.17, "Rexnord ZA-2115 (double row)")
_B6206 = Bearing(9, 9.525, 46.0, 0.0, "6206")
_B22210 = Bearing(17, 11.0, 70.0, 10.0, "22210 (spherical roller)", kind="roller")

MACHINE_TYPES: tuple[MachineType, ...] = (
    MachineType(
        name="motor-6205",
        shaft_hz=29.95,
        bearing=_B6205,
        resonance_hz=3000.0,
        damping=0.05,
        load=1.0,
        noise_std=0.25,
        imbalance=0.2,
        description="2 hp induction motor, drive end, 1797 rpm (CWRU test rig)",
    ),
    MachineType(
        name="fan-6203",
        shaft_hz=24.2,
        bearing=_B6203,
        resonance_hz=4200.0,
        damping=0.04,
        load=0.6,
        noise_std=0.2,
        imbalance=0.3,
        tones=((7.0, 0.15),),
        description="axial fan, 7 blades, 1450 rpm, light load, stiff thin housing",
    ),
    MachineType(
        name="pump-6308",
        shaft_hz=49.5,
        bearing=_B6308,
        resonance_hz=2300.0,
        damping=0.07,
        load=1.4,
        noise_std=0.35,
        imbalance=0.15,
        tones=((6.0, 0.2),),
        description="2-pole centrifugal pump, 6 vanes, 2970 rpm, heavy cast casing",
    ),
    MachineType(
        name="gearbox-nu206",
        shaft_hz=16.7,
        bearing=_BNU206,
        resonance_hz=4800.0,
        damping=0.03,
        load=1.8,
        noise_std=0.3,
        imbalance=0.1,
        tones=((23.0, 0.25), (46.0, 0.1)),
        description="gearbox input shaft, 23-tooth pinion, 1000 rpm, roller bearing",
    ),
    MachineType(
        name="spindle-7206",
        shaft_hz=60.0,
        bearing=_B7206,
        resonance_hz=5200.0,
        damping=0.03,
        load=0.7,
        noise_std=0.2,
        imbalance=0.1,
        description="machine-tool spindle, 3600 rpm, angular-contact bearing, 40 deg",
    ),
    MachineType(
        name="conveyor-6312",
        shaft_hz=16.5,
        bearing=_B6312,
        resonance_hz=2000.0,
        damping=0.08,
        load=2.0,
        noise_std=0.3,
        imbalance=0.1,
        description="conveyor drive pulley, 990 rpm, heavily loaded, soft frame",
    ),
    MachineType(
        name="compressor-za2115",
        shaft_hz=33.33,
        bearing=_BZA2115,
        resonance_hz=3600.0,
        damping=0.04,
        load=1.2,
        noise_std=0.3,
        imbalance=0.2,
        tones=((2.0, 0.1), (4.0, 0.1)),
        description="shaft test rig / compressor, 2000 rpm, 6000 lb radial (NASA IMS rig)",
    ),
    MachineType(
        name="blower-6206",
        shaft_hz=40.0,
        bearing=_B6206,
        resonance_hz=2700.0,
        damping=0.05,
        load=0.9,
        noise_std=0.35,
        imbalance=0.35,
        tones=((12.0, 0.15),),
        description="centrifugal blower, 12 blades, 2400 rpm, noisy environment",
    ),
    MachineType(
        name="mill-22210",
        shaft_hz=20.0,
        bearing=_B22210,
        resonance_hz=3900.0,
        damping=0.06,
        load=1.6,
        noise_std=0.3,
        imbalance=0.25,
        description="roll mill, 1200 rpm, spherical roller bearing",
    ),
)
"""Presets: index = machine-type id. Speeds, geometry and loads are typical of each
application; resonances and damping are plausible housing modes below 6 kHz."""


def get_machine(machine: MachineType | str | int) -> MachineType:
    """Resolve a preset by index or name (or pass a MachineType through)."""
    if isinstance(machine, MachineType):
        return machine
    names = [m.name for m in MACHINE_TYPES]
    if isinstance(machine, (int, np.integer)) and not isinstance(machine, bool):
        if 0 <= int(machine) < len(MACHINE_TYPES):
            return MACHINE_TYPES[int(machine)]
        raise RetainError(
            f"machine type index {machine} out of range; presets are 0..{len(names) - 1}: "
            + ", ".join(names)
        )
    if isinstance(machine, str):
        for m in MACHINE_TYPES:
            if m.name == machine:
                return m
        raise RetainError(f"unknown machine type {machine!r}; presets: " + ", ".join(names))
    raise RetainError(f"machine must be a MachineType, preset name or index, got {machine!r}")


def _class_index(label: int | str) -> int:
    if isinstance(label, str):
        if label not in FAULT_CLASSES:
            raise RetainError(f"unknown fault class {label!r}; classes: {FAULT_CLASSES}")
        return FAULT_CLASSES.index(label)
    if int(label) not in range(len(FAULT_CLASSES)):
        raise RetainError(f"fault class must be 0..{len(FAULT_CLASSES) - 1}, got {label}")
    return int(label)


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
    cls = [_class_index(c) for c in (range(len(FAULT_CLASSES)) if classes is None else classes)]
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


# --------------------------------------------------------------------------- plotting

# how plots mark the characteristic frequencies: key of fault_frequencies -> (label, colour)
FREQUENCY_MARKS = {
    "shaft": ("f_r", "0.45"),
    "ftf": ("FTF (cage)", "tab:olive"),
    "bsf": ("BSF", "tab:pink"),
    "2xbsf": ("2xBSF (ball)", "tab:red"),
    "bpfo": ("BPFO (outer)", "tab:green"),
    "bpfi": ("BPFI (inner)", "tab:blue"),
}


def plot_examples(
    machine: MachineType | str | int,
    path: str | os.PathLike[str],
    fs: float = DEFAULT_FS,
    length: int = DEFAULT_LENGTH,
    seed: int = 0,
    severity: float | tuple[float, float] = 1.5,
    n_average: int = 16,
    max_freq_hz: float | None = None,
) -> Path:
    """Save a PNG with one window and the envelope spectrum per fault class.

    The spectrum is averaged over ``n_average`` windows (single windows are
    noisy) and the characteristic frequencies (f_r, FTF, BSF, 2xBSF, BPFO,
    BPFI, dotted: 2nd harmonics) are marked, so a reader can check that each
    fault's lines land where the geometry says.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m = get_machine(machine)
    x, y = generate(m, max(1, int(n_average)), length, fs, seed, severity=severity)
    fr = fault_frequencies(m)
    fmax = max_freq_hz or min(fs / 2, 2.6 * max(fr["bpfi"], fr["2xbsf"]))
    freqs, spec = envelope_spectrum(x[:, 0], fs, band=(1000.0, None), max_freq_hz=fmax)
    t_ms = np.arange(length) / fs * 1000
    marks = FREQUENCY_MARKS
    fig, axes = plt.subplots(len(FAULT_CLASSES), 2, figsize=(13, 9.5), constrained_layout=True)
    for row in range(len(FAULT_CLASSES)):
        ax_t, ax_f = axes[row]
        first = int(np.flatnonzero(y == row)[0])
        ax_t.plot(t_ms, x[first, 0], lw=0.5, color="k")
        ax_t.set_ylabel(FAULT_CLASSES[row])
        mean_spec = spec[y == row].mean(axis=0)
        ax_f.plot(freqs, mean_spec, lw=1.0, color="k")
        for key, (lab, col) in marks.items():
            ax_f.axvline(fr[key], color=col, lw=1.2, alpha=0.85, label=lab if row == 0 else None)
            if key in ("bpfo", "bpfi", "2xbsf") and 2 * fr[key] <= fmax:
                ax_f.axvline(2 * fr[key], color=col, ls=":", lw=1.2, alpha=0.85)
        ax_f.set_ylim(0, float(mean_spec[freqs > 2].max()) * 1.15)
        ax_f.set_xlim(0, fmax)
    axes[0, 0].set_title("one raw window (acceleration, arbitrary units)")
    axes[0, 1].set_title(
        f"envelope spectrum, band > 1 kHz, mean of {max(1, int(n_average))} windows"
    )
    axes[-1, 0].set_xlabel("time [ms]")
    axes[-1, 1].set_xlabel("frequency [Hz]   (dotted: 2nd harmonic)")
    fig.legend(loc="outside lower center", ncol=6, fontsize=9)
    fig.suptitle(
        f"{m.name}: f_r = {m.shaft_hz:g} Hz, bearing {m.bearing.name}, "
        f"resonance {m.resonance_hz:g} Hz, fs = {fs:g} Hz"
    )
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


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
    name = p.name.lower()
    for suf in (".npz", ".csv.gz", ".csv", ".parquet", ".pq"):
        if name.endswith(suf):
            return suf
    raise RetainError(f"{p}: unsupported file type; use .npz, .csv or .parquet")


def _parse_labels(raw: np.ndarray, where: str) -> tuple[np.ndarray, tuple[str, ...]]:
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

    try:
        df = pd.read_csv(p) if suffix.startswith(".csv") else pd.read_parquet(p)
    except Exception as e:
        raise RetainError(f"{p}: cannot read table ({e})") from e
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
