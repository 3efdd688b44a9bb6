"""CSV files: ``scalars.csv`` (step, name, value; appended), ``params.csv``, one CSV per
table and a copy of each figure, in one folder per run. Readable by anything."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path
from typing import Any

from retain.loggers.base import Logger, Table


class CSVLogger(Logger):
    """Writes into ``folder`` (created); appends to ``scalars.csv`` when it exists.

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> with CSVLogger(folder) as log:
    ...     log.log_scalars({"accuracy": 0.75}, step=2)
    >>> print((folder / "scalars.csv").read_text().strip())
    step,name,value
    2,accuracy,0.75
    """

    def __init__(self, folder: str | Path):
        super().__init__()
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def _write(self, scalars: list[tuple[int, str, float]], params: dict[str, Any],
               tables: list[Table], figures: list[tuple[str, Path]]) -> None:
        if scalars:
            path = self.folder / "scalars.csv"
            new = not path.exists()
            with open(path, "a", newline="") as f:
                writer = csv.writer(f)
                if new:
                    writer.writerow(["step", "name", "value"])
                writer.writerows(scalars)
        if params:
            _write_csv(self.folder / "params.csv", ["name", "value"], sorted(params.items()))
        for name, header, rows in tables:
            _write_csv(self.folder / f"{_file_name(name)}.csv", header, rows)
        for name, path in figures:
            shutil.copyfile(path, self.folder / f"{_file_name(name)}{path.suffix}")


def _write_csv(path: Path, header, rows) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def _file_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in name).strip("-") or "table"
