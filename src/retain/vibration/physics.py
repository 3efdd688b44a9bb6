r"""Physically grounded rolling-element-bearing vibration signals, from the physics of the bearing.

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
from dataclasses import dataclass

import numpy as np

from retain.errors import RetainError

FAULT_CLASSES: tuple[str, ...] = ("normal", "inner_race", "outer_race", "ball")
DEFAULT_FS = 12_000
DEFAULT_LENGTH = 2048

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
        c = class_index(label)
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


def class_index(label: int | str) -> int:
    if isinstance(label, str):
        if label not in FAULT_CLASSES:
            raise RetainError(f"unknown fault class {label!r}; classes: {FAULT_CLASSES}")
        return FAULT_CLASSES.index(label)
    if int(label) not in range(len(FAULT_CLASSES)):
        raise RetainError(f"fault class must be 0..{len(FAULT_CLASSES) - 1}, got {label}")
    return int(label)


