"""``retain bench``: run scenario × strategies × hyper-parameters × seeds grids in worker
processes, resumably, and summarise them as mean ± std over seeds."""

from retain.bench.grid import expand, load_config
from retain.bench.runner import execute, read_records, run_grid
from retain.bench.summary import summarise, write_outputs

__all__ = ["expand", "load_config", "execute", "read_records", "run_grid", "summarise",
           "write_outputs"]
