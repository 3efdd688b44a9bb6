"""The ``recordings`` scenario for ``retain run``: real vibration recordings as experiences.

``retain run --scenario recordings --data DIR_OR_MANIFEST --by fault|load|size|COLUMN``.
The defaults below were chosen on a validation cut of the training part of the CWRU
recordings (``--validation 0.2``), never on their test part; docs/vibration.md has the sweep.
It chose 10 epochs on 2026-12-06: since replay's memory draws moved to a torch generator,
5 epochs leave Replay over fault types at 0.808 on validation, 10 reach 1.000.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from retain.errors import RetainError
from retain.metrics import RunResult
from retain.report import Section
from retain.scenarios import Stream
from retain.scenarios.catalog import ScenarioSpec

MAX_ROWS = 8
OPTIONS = ("data", "by", "window", "stride", "fs", "train_fraction", "validation")
RUN_DEFAULTS = {
    "model": "vibration-cnn", "epochs": 10, "batch_size": 32, "lr": 3e-3, "optimizer": "adam",
    "joint": True, "by": "fault",
    "strategy_defaults": {
        "ewc": {"lambda_": 300.0},
        "online-ewc": {"lambda_": 100.0, "gamma": 0.9},
        "replay": {"capacity": 200}, "derpp": {"capacity": 200}, "der": {"capacity": 200},
        "er-ace": {"capacity": 200}, "agem": {"capacity": 200},
    },
}


def build(seed: int, n: int | None, data: Any = None, by: str = "fault", window: int = 2048,
          stride: int | None = None, fs: float | None = None, train_fraction: float = 0.7,
          validation: float | None = None) -> Stream:
    """The stream for ``retain run``; the seed changes the weights, not the data."""
    from retain.vibration import recordings_stream

    if data is None:
        raise RetainError("--scenario recordings needs --data: a folder of CWRU .mat files or "
                          "a manifest (CSV/Parquet with path, label, ...)")
    return recordings_stream(data, by=by, length=int(window), stride=stride,
                             train_fraction=float(train_fraction), fs=fs,
                             validation=validation, n_experiences=n)


def report_sections(out: Path, results: dict[str, RunResult], config: dict) -> list[Section]:
    """Envelope spectra of the recordings (grouped by load where known) and the data used."""
    from retain.vibration import load_recordings
    from retain.vibration.report import plot_recordings

    recs = load_recordings(config["data"], config.get("fs"))
    column = "load" if all("load" in r.meta for r in recs) else config.get("by") or "fault"
    groups: dict[Any, list] = {}
    for r in recs:
        groups.setdefault(r.meta.get(column, "-"), []).append(r)
    images = []
    for key, members in sorted(groups.items(), key=lambda kv: str(kv[0])):
        for part in range(0, len(members), MAX_ROWS):  # a readable figure per 8 recordings
            suffix = f"-{part // MAX_ROWS + 1}" if len(members) > MAX_ROWS else ""
            name = f"recordings-{column}-{key}{suffix}.png".replace(" ", "_").replace("/", "_")
            plot_recordings(recs, members[part:part + MAX_ROWS], out / name,
                            f"{column} {key}{' HP' if column == 'load' else ''}, "
                            f"fs = {recs.fs:g} Hz",
                            length=int(config.get("window") or 2048))
            images.append(name)
    return [Section("Recordings: raw windows and envelope spectra",
                    text=recs.describe() + ". The lines mark the bearing's characteristic "
                    "frequencies at each recording's shaft speed: each fault's spectrum "
                    "should peak on its own line.", images=images)]


RECORDINGS = ScenarioSpec(
    "real vibration recordings (--data DIR_OR_MANIFEST), one experience per --by value",
    build, defaults=RUN_DEFAULTS, report=report_sections, options=OPTIONS)
