"""``retain bench``: a grid of runs in parallel, resumable, summarised over seeds."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from retain.config import parse_value
from retain.errors import RetainError


def split_methods(methods: str) -> list[str]:
    """``--methods`` split at commas outside parentheses ("oEWC (Fisher on 1,024 ...)" is one
    method)."""
    return [m for m in re.split(r",(?![^(]*\))", methods) if m.strip()]

# retain.bench (and with it torch and matplotlib) is imported inside the functions, so that
# parsing and --help stay fast.

err = Console(stderr=True)


def split_specs(text: str) -> list[str]:
    """``"der:capacity=200,alpha=0.2,naive"`` -> ``["der:capacity=200,alpha=0.2", "naive"]``:
    a comma piece with ``=`` but no ``:`` continues the previous strategy's arguments."""
    specs: list[str] = []
    for piece in (p.strip() for p in text.split(",")):
        if not piece:
            continue
        if specs and "=" in piece and ":" not in piece.split("=", 1)[0]:
            specs[-1] += "," + piece
        else:
            specs.append(piece)
    return specs


def parse_grid(items: list[str]) -> dict[str, list[Any]]:
    """``["lr=0.01,0.1", "der.alpha=0.2,0.5"]`` -> ``{"lr": [0.01, 0.1], ...}``."""
    grid = {}
    for item in items:
        key, eq, values = item.partition("=")
        if not eq or not key.strip() or not values.strip():
            raise RetainError(f"--grid {item!r} must look like key=v1,v2")
        grid[key.strip()] = [parse_value(v.strip()) for v in values.split(",") if v.strip()]
    return grid


def parse_seeds(text: str) -> list[int]:
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise RetainError(f"--seeds must be integers like 0,1,2, got {text!r}") from None


def build_config(config: Path | None, given: dict[str, Any]) -> dict[str, Any]:
    """Config file values overridden by the options given on the command line."""
    from retain.bench.grid import load_config

    cfg = load_config(config) if config is not None else {}
    cfg.update({k: v for k, v in given.items() if v is not None})
    return cfg


def print_summary(rows: list[dict[str, Any]], console: Console) -> None:
    from retain.bench.summary import METRICS, format_cell

    table = Table(title="mean ± std over seeds")
    for col in ("scenario", "strategy", "seeds", *[h for _, h, _ in METRICS]):
        table.add_column(col, justify="left" if col in ("scenario", "strategy") else "right")
    for r in rows:
        table.add_row(r["scenario"], r["name"], str(r["seeds"]),
                      *[format_cell(r, k) for k, _, _ in METRICS])
    console.print(table)


def execute_grid(runs: list[dict[str, Any]], out: Path, workers: int | None,
                 title: str, backend: str = "process", address: str | None = None,
                 loggers: list | None = None) -> list[dict[str, Any]]:
    """Run what is pending with a progress bar, then write every output file."""
    from retain.bench.runner import pending, run_grid
    from retain.bench.summary import write_outputs

    todo = pending(runs, out)
    if len(todo) < len(runs):
        err.print(f"resuming: {len(runs) - len(todo)} of {len(runs)} runs already done in {out}")
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    failures = 0
    with Progress(*columns, console=err) as bar:
        task = bar.add_task("bench", total=len(todo))

        def progress(record: dict[str, Any]) -> None:
            nonlocal failures
            if record["status"] != "ok":
                failures += 1
                err.print(f"[red]run {record['id']} failed:[/red] {record['error']}",
                          highlight=False)
            bar.advance(task)

        run_grid(todo, out, workers=workers, progress=progress, backend=backend,
                 address=address, loggers=loggers or [])
    rows = write_outputs(out, title=title, loggers=loggers or [])
    if failures:
        err.print(f"[yellow]{failures} run(s) failed; see {out / 'runs.csv'}[/yellow]")
    return rows


def _searched(runs: list[dict[str, Any]], out: Path, method: str, trials: int,
              space: list[str] | None, validation: float,
              timeout: float | None) -> list[dict[str, Any]]:
    """The runs with hyper-parameters chosen on validation data (see retain.bench.search)."""
    from retain.bench.search import DEFAULT_SPACE, parse_space, search_grid

    if method != "optuna":
        raise RetainError(f"unknown --search {method!r}; the one there is: optuna")

    def progress(name: str, found: dict[str, Any]) -> None:
        values = ", ".join(f"{k}={v:.4g}" for k, v in found["params"].items()) or "nothing"
        score = "" if found["value"] is None else f" (validation accuracy {found['value']:.4f}"
        trials_done = f"{found['trials']} trials"
        shown = f"{score}, {trials_done})" if score else f" ({trials_done})"
        err.print(f"search {name}: {values}{shown}", highlight=False)

    chosen = parse_space(space) if space else DEFAULT_SPACE
    return search_grid(runs, out, trials, chosen, validation, timeout, progress)


def register(app: typer.Typer) -> None:
    @app.command("bench")
    def bench(
        scenario: Annotated[str | None, typer.Option(
            help="split-digits, split-mnist, permuted-mnist, rotated-mnist, ...")] = None,
        strategies: Annotated[str | None, typer.Option(
            help="comma-separated strategy specs, e.g. 'naive,der:capacity=200,alpha=0.2' "
                 "('joint' = train on all experiences at once)")] = None,
        seeds: Annotated[str | None, typer.Option(help="comma-separated seeds")] = None,
        grid: Annotated[list[str] | None, typer.Option(
            help="key=v1,v2 (repeatable): a run setting (lr, batch_size, epochs, ...) or a "
                 "strategy hyper-parameter (alpha, der.alpha)")] = None,
        config: Annotated[Path | None, typer.Option(help="YAML config with the same keys")
                          ] = None,
        epochs: Annotated[int | None, typer.Option(help="epochs per experience")] = None,
        batch_size: Annotated[int | None, typer.Option(help="mini-batch size")] = None,
        lr: Annotated[float | None, typer.Option(help="learning rate")] = None,
        experiences: Annotated[int | None, typer.Option(help="number of experiences")] = None,
        workers: Annotated[int | None, typer.Option(help="worker processes (default: cores)")
                           ] = None,
        max_runs: Annotated[int | None, typer.Option(
            help="refuse larger grids without --yes (default 100)")] = None,
        yes: Annotated[bool, typer.Option("--yes", help="run a grid above --max-runs")
                       ] = False,
        reproduce: Annotated[str | None, typer.Option(
            help="a published table to rerun: buzzega2020")] = None,
        tables: Annotated[str | None, typer.Option(
            help="with --reproduce: seq-mnist,perm-mnist,rot-mnist (default all)")] = None,
        methods: Annotated[str | None, typer.Option(
            help="with --reproduce: only these methods, e.g. SGD,ER/200,DER++")] = None,
        out: Annotated[Path, typer.Option(help="results folder (resumed if it exists)")
                       ] = Path("results/bench"),
        as_json: Annotated[bool, typer.Option("--json", help="print the summary as JSON")
                           ] = False,
        backend: Annotated[str, typer.Option(
            help="process (a pool on this machine) or ray (Ray tasks)")] = "process",
        ray_address: Annotated[str | None, typer.Option(
            help="with --backend ray: the cluster to join (default: a local Ray)")] = None,
        log: Annotated[str | None, typer.Option(
            help="log the grid to tensorboard, mlflow and/or csv (comma-separated)")] = None,
        log_dir: Annotated[Path, typer.Option(help="where --log writes")] = Path("retain-logs"),
        search: Annotated[str | None, typer.Option(
            help="choose hyper-parameters first on a validation split of each experience's "
                 "training data: optuna")] = None,
        trials: Annotated[int, typer.Option(help="--search: trials per setting")] = 20,
        space: Annotated[list[str] | None, typer.Option(
            help="--search: KEY=log:LO:HI or KEY=LO:HI, repeatable (default: lr and the "
                 "strategies' main weights)")] = None,
        validation: Annotated[float, typer.Option(
            help="--search: share of each experience's training data held out")] = 0.1,
        search_timeout: Annotated[float | None, typer.Option(
            help="--search: seconds per setting at most")] = None,
    ) -> None:
        """Run scenario × strategies × hyper-parameters × seeds; resume an interrupted grid."""
        from retain.bench.grid import DEFAULT_MAX_RUNS, expand

        cfg = build_config(config, {
            "scenario": scenario, "epochs": epochs, "batch_size": batch_size, "lr": lr,
            "experiences": experiences, "workers": workers, "max_runs": max_runs,
            "strategies": None if strategies is None else split_specs(strategies),
            "seeds": None if seeds is None else parse_seeds(seeds),
            "grid": None if not grid else parse_grid(grid)})
        limit = int(cfg.get("max_runs") or DEFAULT_MAX_RUNS)
        if reproduce is not None:
            from retain.bench.reproduce import reproduction_runs

            runs = reproduction_runs(reproduce, cfg.get("seeds", [0, 1, 2]),
                                     None if tables is None else tables.split(","),
                                     None if methods is None else split_methods(methods))
            title = f"retain bench --reproduce {reproduce}"
        else:
            runs = expand({k: v for k, v in cfg.items() if k not in ("workers",)})
            title = "retain bench"
        if search is not None:
            runs = _searched(runs, out, search, trials, space, validation, search_timeout)
            title = f"{title} --search {search} --trials {trials}"
        if len(runs) > limit and not yes:
            raise RetainError(f"this grid has {len(runs)} runs, more than the limit of {limit}; "
                              "pass --yes to run it anyway or raise --max-runs")
        from retain.loggers import make_loggers

        workers = cfg.get("workers") or (None if backend == "ray" else os.cpu_count())
        loggers = make_loggers(log, log_dir, f"bench-{out.name}")
        try:
            rows = execute_grid(runs, out, workers, title, backend, ray_address, loggers)
        finally:
            for logger in loggers:
                logger.close()
        if reproduce is not None:
            from retain.bench.reproduce import markdown

            text = markdown(rows, " ".join(["retain", *sys.argv[1:]]))
            (out / "reproduction.md").write_text(text)
            err.print(f"wrote {out / 'reproduction.md'}")
        print_summary(rows, err if as_json else Console())
        err.print(f"wrote {out / 'index.html'}, summary.csv/json and runs.csv/json")
        if as_json:
            json.dump(rows, sys.stdout, indent=2)
            sys.stdout.write("\n")
