"""TensorBoard event files through ``torch.utils.tensorboard`` (needs the ``tensorboard``
package: ``pip install 'retain[log]'``): scalars as scalars, parameters and tables as
markdown text, figures as images."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from retain.extras import require
from retain.loggers.base import Logger, Table


class TensorBoardLogger(Logger):
    """One event-file folder per run: ``tensorboard --logdir`` its parent to compare runs."""

    def __init__(self, folder: str | Path):
        super().__init__()
        require("tensorboard", "log")
        from torch.utils.tensorboard import SummaryWriter

        self.folder = Path(folder)
        self._writer = SummaryWriter(log_dir=str(self.folder))

    def _write(self, scalars: list[tuple[int, str, float]], params: dict[str, Any],
               tables: list[Table], figures: list[tuple[str, Path]]) -> None:
        for step, name, value in scalars:
            self._writer.add_scalar(name, value, global_step=step)
        if params:
            self._writer.add_text("params", _markdown(["name", "value"], [
                (k, json.dumps(v, default=str)) for k, v in sorted(params.items())]))
        for name, header, rows in tables:
            self._writer.add_text(name, _markdown(header, rows))
        if figures:
            image = require("matplotlib.image", "report")
            for name, path in figures:
                self._writer.add_image(name, image.imread(path)[..., :3], dataformats="HWC")
        self._writer.flush()

    def _close(self) -> None:
        self._writer.close()


def _markdown(header, rows) -> str:
    lines = ["| " + " | ".join(str(h) for h in header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in r) + " |" for r in rows])
