"""The ``vibration-machines`` scenarios (``retain run``): simulated machine types as experiences.

Why: the bearing-fault classifier must learn new machine types one after another; these
scenarios make that a one-line run (``retain run --scenario vibration-machines``) with a
model and training budget that suit vibration windows. The defaults below were chosen on
an independent draw of the data (seed 1), not on the test windows of the reported run;
docs/vibration.md has the sweep.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from retain.errors import RetainError
from retain.metrics import RunResult
from retain.report import Section
from retain.scenarios import Stream, split_by
from retain.scenarios.catalog import ScenarioSpec
from retain.vibration.generator import make_dataset
from retain.vibration.physics import FAULT_CLASSES, MACHINE_TYPES
from retain.vibration.report import plot_examples

N_PER_CLASS_ENV = "RETAIN_VIBRATION_N_PER_CLASS"  # windows per class and machine (quick runs)
DEFAULT_MACHINES = 5
DEFAULT_N_PER_CLASS = 64

RUN_DEFAULTS = {
    "epochs": 10, "batch_size": 32, "lr": 3e-3, "optimizer": "adam", "joint": True,
    "strategy_defaults": {
        "ewc": {"lambda_": 300.0},
        "online-ewc": {"lambda_": 100.0, "gamma": 0.9},
        "replay": {"capacity": 200},
    },
}


def n_per_class() -> int:
    """Windows per class and machine type: ``$RETAIN_VIBRATION_N_PER_CLASS`` or 64."""
    raw = os.environ.get(N_PER_CLASS_ENV, "").strip()
    if not raw:
        return DEFAULT_N_PER_CLASS
    if not raw.isdigit() or int(raw) < 4:
        raise RetainError(f"{N_PER_CLASS_ENV} must be an integer >= 4, got {raw!r}")
    return int(raw)


def machine_stream(seed: int = 0, n_machines: int | None = None, label: str = "fault",
                   windows_per_class: int | None = None) -> Stream:
    """The first ``n_machines`` preset machine types, one experience each, split by name.

    ``label="fault"``: the four fault classes in every experience (domain-incremental);
    ``label="pair"``: each (machine type, fault) pair is a class (class-incremental).
    """
    n = DEFAULT_MACHINES if n_machines is None else int(n_machines)
    if not 1 <= n <= len(MACHINE_TYPES):
        raise RetainError(f"vibration scenarios have 1..{len(MACHINE_TYPES)} machine types "
                          f"(--experiences), got {n}")
    data = make_dataset(n, n_per_class=windows_per_class or n_per_class(), seed=seed)
    names = np.array([m.name for m in data.machines])
    stream = split_by(data.train, names[data.train.tensors[2].numpy()], data.test,
                      test_key=names[data.test.tensors[2].numpy()], label=label)
    stream.name = "vibration-machines" + ("-class" if label == "pair" else "")
    stream.info.update(machines=names.tolist(), fs=data.fs, classes=list(FAULT_CLASSES))
    return stream


def report_sections(out: Path, results: dict[str, RunResult], config: dict) -> list[Section]:
    """The physics plots (one per machine type) and how the first machine type transfers."""
    n = config.get("experiences") or DEFAULT_MACHINES
    images = []
    for machine in MACHINE_TYPES[:n]:
        image = f"signals-{machine.name}.png"
        plot_examples(machine, out / image, seed=config.get("seed", 0))
        images.append(image)
    sections = [Section(
        "Example signals and envelope spectra per fault class",
        text="Left: one raw window per class. Right: the mean envelope spectrum with the "
             "characteristic frequencies from the bearing geometry marked (f_r, FTF, BSF, "
             "2xBSF, BPFO, BPFI; dotted: 2nd harmonics). Each fault's lines should land on "
             "its marker.", images=images)]
    first = results.get("naive") or next(iter(results.values()))
    names = first.experience_names or [m.name for m in MACHINE_TYPES[:n]]
    sections.append(Section(
        "Trained on the first machine type only",
        text="Accuracy on each machine type's test set after the first experience (chance "
             f"is {1 / len(FAULT_CLASSES):.2f} in the domain-incremental scenario): the "
             "machine types really differ.",
        header=("machine type", "accuracy"),
        rows=[(name, float(a)) for name, a in zip(names, first.accuracy_matrix[0], strict=True)]))
    return sections


MACHINES = ScenarioSpec(
    "bearing faults, one simulated machine type per experience (domain-incremental)",
    lambda seed, n: machine_stream(seed, n, "fault"), model="vibration-cnn",
    model_args={"features": "envelope"}, defaults=RUN_DEFAULTS, report=report_sections)
MACHINE_PAIRS = ScenarioSpec(
    "bearing faults, (machine type, fault) pairs as classes (class-incremental)",
    lambda seed, n: machine_stream(seed, n, "pair"), model="vibration-cnn",
    model_args={"features": "envelope"}, defaults=RUN_DEFAULTS, report=report_sections)
