"""CWRU Bearing Data Center file numbers: what each recording is, so a folder needs no manifest.

Why: CWRU names its files by number only (``209.mat``), and the number is the only place the
fault type, fault size, motor load and sampling rate are written down -- in the tables the data
center publishes (engineering.case.edu/bearingdatacenter). Some files also carry a copy of
another file's variables (``99.mat`` holds ``X098_DE_time``), so the signal is picked by the
file's own number and channel: ``X209_DE_time``.

Covered: the normal baseline (97-100, sampled at 48 kHz) and the 12 kHz drive-end faults of
0.007, 0.014 and 0.021 in (inner race, ball, outer race centred at 6:00), loads 0-3 HP.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from retain.errors import RetainError

__all__ = ["CHANNELS", "CWRUFile", "NOMINAL_RPM", "bearing_machine", "cwru_file", "variable"]

CHANNELS = ("DE", "FE", "BA")  # drive end, fan end, base accelerometers
NOMINAL_RPM = {0: 1797, 1: 1772, 2: 1750, 3: 1730}  # shaft speed by motor load (HP)

# first file number of each run of four (loads 0, 1, 2, 3 HP): (fault, size in inches, fs)
_RUNS = {
    97: ("normal", 0.0, 48_000),
    105: ("inner_race", 0.007, 12_000),
    118: ("ball", 0.007, 12_000),
    130: ("outer_race", 0.007, 12_000),
    169: ("inner_race", 0.014, 12_000),
    185: ("ball", 0.014, 12_000),
    197: ("outer_race", 0.014, 12_000),
    209: ("inner_race", 0.021, 12_000),
    222: ("ball", 0.021, 12_000),
    234: ("outer_race", 0.021, 12_000),
}
_NUMBER = re.compile(r"(?:^|[^0-9])(\d{2,4})$")


@dataclass(frozen=True)
class CWRUFile:
    """One CWRU recording as its number says: fault type, size (in; 0 for normal), load (HP),
    sampling rate (Hz) and the nominal shaft speed."""

    number: int
    fault: str
    size: float
    load: int
    fs: int

    @property
    def rpm(self) -> int:
        return NOMINAL_RPM[self.load]


def cwru_file(path: str | Path) -> CWRUFile | None:
    """The CWRU recording a file name stands for (``209.mat``, ``IR021_0_209.mat``), or None.

    The number is the last run of digits of the name; it must be one of the tables above.
    """
    match = _NUMBER.search(Path(path).stem)
    if match is None:
        return None
    number = int(match.group(1))
    for first, (fault, size, fs) in _RUNS.items():
        if first <= number < first + 4:
            return CWRUFile(number, fault, size, number - first, fs)
    return None


def variable(number: int, channel: str = "DE") -> str:
    """The variable of a CWRU .mat file holding one channel: ``variable(97) == 'X097_DE_time'``."""
    channel = str(channel).upper()
    if channel not in CHANNELS:
        raise RetainError(f"CWRU channel must be one of {', '.join(CHANNELS)}, got {channel!r}")
    return f"X{number:03d}_{channel}_time"


def bearing_machine(rpm: float, preset: str = "motor-6205"):
    """A simulator preset at a shaft speed, for marking the characteristic frequencies of real
    recordings; ``motor-6205`` is CWRU's drive-end bearing (SKF 6205-2RS)."""
    from dataclasses import replace

    from retain.vibration.physics import get_machine

    return replace(get_machine(preset), shaft_hz=float(rpm) / 60.0)
