"""Simulated windows of a real machine, for pre-training before its recordings arrive.

Why: real fault recordings are scarce (a machine rarely fails on demand), the physics is
known. The simulator's ``motor-6205`` preset models CWRU's drive-end bearing; simulated at
the shaft speeds of the real recordings, it gives a model the four fault classes, with the
same class ids, before it sees a single real window. ``benchmarks/sim_to_real.py``
measures whether that helps.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import TensorDataset

from retain.vibration.cwru import NOMINAL_RPM, bearing_machine
from retain.vibration.generator import generate
from retain.vibration.physics import DEFAULT_FS, DEFAULT_LENGTH

__all__ = ["simulated_windows"]


def simulated_windows(rpms: Sequence[float] = tuple(NOMINAL_RPM.values()),
                      n_per_class: int = 128, length: int = DEFAULT_LENGTH,
                      fs: float = DEFAULT_FS, seed: int = 0,
                      preset: str = "motor-6205") -> TensorDataset:
    """``TensorDataset(x [N, 1, length], y [N])``: every fault class of ``preset`` at every
    shaft speed in ``rpms`` (default: CWRU's speeds at 0-3 HP), ``n_per_class`` windows each;
    labels are :data:`~retain.vibration.physics.FAULT_CLASSES` ids."""
    xs, ys = [], []
    for k, rpm in enumerate(rpms):
        x, y = generate(bearing_machine(rpm, preset), n_per_class, length, fs, seed=seed + k)
        xs.append(x)
        ys.append(y)
    return TensorDataset(torch.from_numpy(np.concatenate(xs)),
                         torch.from_numpy(np.concatenate(ys)))
