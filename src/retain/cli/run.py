"""``retain run`` and ``retain demo``: train strategies on a scenario, side by side."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import torch
import typer
from rich import box
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from retain.config import build_strategies, read_options, strategy_label
from retain.learner import Learner
from retain.metrics import RunResult
from retain.optim import make_optimizer
from retain.scenarios.catalog import (
    SCENARIO_OPTIONS,
    build_model,
    build_scenario,
    scenario_defaults,
    scenario_spec,
)

err = Console(stderr=True)

RUN_DEFAULTS: dict[str, Any] = {
    "scenario": "split-digits", "strategy": ["naive"], "epochs": 1, "batch_size": 10,
    "lr": 0.03, "optimizer": "sgd", "seed": 0, "experiences": None, "hidden": [100, 100],
    "model": "mlp", "threads": None, "joint": False, "strategy_defaults": {},
    "eval_every": None,
    **dict.fromkeys(SCENARIO_OPTIONS),
}
JOINT_LABEL = "joint (upper bound)"
#: what ``retain run``'s options default to when neither given nor in --config (for --help)
OPTION_DEFAULTS = {"run": RUN_DEFAULTS}


def compare(scenario: str, strategies: list, epochs: int, batch_size: int, lr: float,
            optimizer: str, seed: int, experiences: int | None = None,
            hidden: tuple[int, ...] = (100, 100), model: str | None = "mlp",
            quiet: bool = False, joint: bool = False,
            strategy_defaults: dict | None = None,
            scenario_options: dict | None = None,
            eval_every: int | None = None,
            loggers_for: Callable[[str], list] | None = None,
            backbone: str | None = None) -> dict[str, RunResult]:
    """Run each strategy spec on the same scenario from the same initial weights; ``joint``
    adds training on all experiences at once (same epochs) as the upper bound.
    ``scenario_options`` (``data``, ``by``, ...) go to a scenario that takes them;
    ``eval_every`` scores the seen test sets every that many steps (the stability gap);
    ``loggers_for(label)`` gives the loggers of each strategy's run; ``backbone``
    (``"module:attribute"``) replaces every input by its frozen features, computed once, and
    the model by a linear head (docs/pretrained.md)."""
    built = [(strategy_label(s), build_strategies(s, strategy_defaults))
             for s in strategies]  # fail early
    if joint:
        built.append((JOINT_LABEL, []))
    stream = build_scenario(scenario, seed=seed, n_experiences=experiences,
                            options=scenario_options)
    if backbone is not None:
        from retain.backbone import cache_stream, load_backbone

        stream, hidden = cache_stream(load_backbone(backbone), stream), ()
    results: dict[str, RunResult] = {}
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/"
                  "{task.total} experiences"), TimeElapsedColumn(), console=err,
                  disable=quiet) as bar:
        for label, strats in built:
            net = build_model(stream, model=model, hidden=tuple(hidden), seed=seed)
            learner = Learner(net, make_optimizer(optimizer, net.parameters(), lr=lr),
                              strategies=strats, seed=seed)
            task = bar.add_task(f"{label:>12}", total=len(stream))
            if label == JOINT_LABEL:
                from retain.bench.runner import train_joint  # the bench's upper bound, reused

                results[label] = train_joint(learner, stream, {"epochs": epochs,
                                                          "batch_size": batch_size})
                bar.update(task, completed=len(stream))
                continue
            loggers = loggers_for(label) if loggers_for else []
            for log in loggers:
                log.log_params({"strategy": label, "scenario": scenario, "epochs": epochs,
                                "batch_size": batch_size, "lr": lr, "optimizer": optimizer,
                                "seed": seed, "model": model, "eval_every": eval_every})
            results[label] = learner.run(stream, epochs=epochs, batch_size=batch_size,
                                         progress=lambda i, n, s, t=task: bar.advance(t),
                                         eval_every=eval_every, loggers=loggers)
    return results


def print_table(results: dict[str, RunResult], title: str, console: Console) -> None:
    """The results table: at its natural width when piped (one line per strategy); on a
    narrower terminal, without edges, and strategy names wrap at ``:``, ``,`` and ``+``,
    never inside a word."""
    columns, rows = _rows(results)
    table = Table(title=title)
    for col in columns:
        table.add_column(col, justify="right" if col != "strategy" else "left",
                         overflow="fold")
    for row in rows:
        table.add_row(*row)
    wide = console.measure(table, options=console.options.update_width(1000)).maximum
    if not console.is_terminal:
        console = Console(file=console.file, width=max(wide, console.width),
                          no_color=console.no_color)
    elif wide > console.width:
        table = _narrow(title, columns, rows, console.width)
    console.print(table)


def _rows(results: dict[str, RunResult]) -> tuple[list[str], list[list[str]]]:
    metric = next(iter(results.values())).metric
    gap = any(r.min_acc is not None for r in results.values())
    columns = ["strategy", f"final avg {metric}", "forgetting", "BWT", "FWT", "NFR", "PFR",
               *(["min-ACC", "WC-ACC"] if gap else []), "train s"]
    rows = []
    for name, r in results.items():
        measures = [r.negative_flip_rate, r.positive_flip_rate,
                    *([r.min_acc, r.wc_acc] if gap else [])]
        rows.append([name, f"{r.average_accuracy:.3f}", f"{r.forgetting:.3f}", f"{r.bwt:.3f}",
                     f"{r.fwt:.3f}", *(_cell(v) for v in measures), f"{sum(r.train_time):.1f}"])
    return columns, rows


#: shorter headers for a narrow terminal
_SHORT = {"final avg accuracy": "avg acc", "final avg mse": "avg mse", "forgetting": "forget"}


def _narrow(title: str, columns: list[str], rows: list[list[str]], width: int) -> Table:
    """Numbers at their own width under short headers; the strategy column takes what is left,
    its names broken after ``:``, ``,`` and ``+``."""
    table = Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 0, 0, 1),
                  expand=True, width=width)
    table.add_column("strategy", overflow="fold", ratio=1, min_width=10)
    for i, col in enumerate(columns[1:], 1):
        col = _SHORT.get(col, col)
        size = max([len(row[i]) for row in rows] + [len(w) for w in col.split()])
        table.add_column("\n".join(col.split()), justify="right", width=size, no_wrap=True)
    for name, *numbers in rows:
        table.add_row(re.sub(r"([:,+])(?=\S)", r"\1 ", name), *numbers)
    return table


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def write_outputs(out: Path, results: dict[str, RunResult], config: dict, title: str) -> None:
    from retain.report import write_report

    out.mkdir(parents=True, exist_ok=True)
    payload = {"config": config, "results": {k: r.to_dict() for k, r in results.items()}}
    (out / "results.json").write_text(json.dumps(payload, indent=2))
    spec = scenario_spec(str(config.get("scenario")))
    extra = spec.report(out, results, config) if spec and spec.report else []
    write_report(out, results, title=title, config=config, extra=extra)
    err.print(f"wrote {out / 'results.json'} and {out / 'index.html'}")


def _load_config(path: Path | None) -> dict[str, Any]:
    return read_options(path, RUN_DEFAULTS)


def register(app: typer.Typer) -> None:
    @app.command("run")
    def run(
        scenario: Annotated[str | None, typer.Option(help="split-mnist, permuted-mnist, "
                            "rotated-mnist, split-digits, task-split-mnist, ... or a data file")
                            ] = None,
        strategy: Annotated[list[str] | None, typer.Option(
            help="strategy to compare, repeatable; compose with '+', set hyper-parameters "
                 "with 'ewc:lambda_=1000'")] = None,
        epochs: Annotated[int | None, typer.Option(help="epochs per experience")] = None,
        batch_size: Annotated[int | None, typer.Option(help="mini-batch size")] = None,
        lr: Annotated[float | None, typer.Option(help="learning rate")] = None,
        optimizer: Annotated[str | None, typer.Option(help="sgd, adam, rmsprop")] = None,
        seed: Annotated[int | None, typer.Option(help="seed for weights and sampling")] = None,
        experiences: Annotated[int | None, typer.Option(help="number of experiences")] = None,
        config: Annotated[Path | None, typer.Option(help="YAML file with the same keys")] = None,
        out: Annotated[Path | None, typer.Option(help="write results.json + report here")
                       ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="print results as JSON")] = False,
        data: Annotated[str | None, typer.Option(
            help="recordings: a folder of CWRU .mat files or a manifest table")] = None,
        by: Annotated[str | None, typer.Option(
            help="recordings: one experience per fault, load, size or manifest column")] = None,
        window: Annotated[int | None, typer.Option(help="recordings: window length")] = None,
        stride: Annotated[int | None, typer.Option(
            help="recordings: samples between training windows (default window/4)")] = None,
        fs: Annotated[float | None, typer.Option(
            help="recordings: the model's sampling rate; others are resampled")] = None,
        train_fraction: Annotated[float | None, typer.Option(
            help="recordings: the first fraction of each recording trains (0.7)")] = None,
        validation: Annotated[float | None, typer.Option(
            help="recordings: test on the training part's last fraction instead (tuning)")
            ] = None,
        eval_every: Annotated[int | None, typer.Option(
            help="also test the seen experiences every N steps: stability gap, min-ACC, "
                 "WC-ACC")] = None,
        log: Annotated[str | None, typer.Option(
            help="log each run to tensorboard, mlflow and/or csv (comma-separated)")] = None,
        log_dir: Annotated[Path, typer.Option(help="where --log writes")] = Path("retain-logs"),
        backbone: Annotated[str | None, typer.Option(
            help="frozen feature extractor 'module:attribute'; features computed once")] = None,
        head: Annotated[list[str] | None, typer.Option(
            help="closed-form head on the features (repeatable): ncm, slda, ranpac")] = None,
    ) -> None:
        """Train strategies on a scenario and compare what they remember."""
        from_file = _load_config(config)
        name = scenario or from_file.get("scenario", RUN_DEFAULTS["scenario"])
        cfg = {**RUN_DEFAULTS, **scenario_defaults(name), **from_file}
        given = {"scenario": scenario, "strategy": strategy, "epochs": epochs,
                 "batch_size": batch_size, "lr": lr, "optimizer": optimizer, "seed": seed,
                 "experiences": experiences, "data": data, "by": by, "window": window,
                 "stride": stride, "fs": fs, "train_fraction": train_fraction,
                 "validation": validation, "eval_every": eval_every}
        cfg.update({k: v for k, v in given.items() if v is not None})
        if head:  # heads are strategies; they replace the default strategy unless given
            cfg["strategy"] = [*(strategy or []), *head]
        if isinstance(cfg["strategy"], str | dict):
            cfg["strategy"] = [cfg["strategy"]]
        if cfg["threads"]:
            torch.set_num_threads(int(cfg["threads"]))
        from retain.distributed import close, init

        world = init()  # under torchrun: every rank trains its share, rank 0 reports
        opened: dict[str, list] = {}
        loggers_for = _loggers_factory(log if world.main else None, log_dir, opened)
        try:
            results = compare(cfg["scenario"], cfg["strategy"], cfg["epochs"],
                              cfg["batch_size"], cfg["lr"], cfg["optimizer"], cfg["seed"],
                              cfg["experiences"], tuple(cfg["hidden"]), cfg["model"],
                              quiet=not world.main, joint=cfg["joint"],
                              strategy_defaults=cfg["strategy_defaults"],
                              scenario_options={k: cfg[k] for k in SCENARIO_OPTIONS},
                              eval_every=cfg["eval_every"], loggers_for=loggers_for,
                              backbone=backbone or cfg.get("backbone"))
            if world.main:
                _finish(results, cfg, f"{cfg['scenario']}", out, as_json)
                if out is not None:
                    _log_figures(opened, out)
        finally:
            for loggers in opened.values():
                for logger in loggers:
                    logger.close()
            close()

    @app.command("demo")
    def demo(
        out: Annotated[Path | None, typer.Option(help="write results.json + report here")
                       ] = Path("results/demo"),
        quick: Annotated[bool, typer.Option(help="split digits instead of MNIST (seconds)")
                         ] = False,
        as_json: Annotated[bool, typer.Option("--json", help="print results as JSON")] = False,
    ) -> None:
        """The main job: Naive, EWC, LwF and Replay side by side on class-incremental Split
        MNIST (MLP 100-100, 1 epoch, batch 10)."""
        cfg = {**RUN_DEFAULTS, **DEMO}
        if quick:
            cfg["scenario"] = "split-digits"
        results = compare(cfg["scenario"], cfg["strategy"], cfg["epochs"], cfg["batch_size"],
                          cfg["lr"], cfg["optimizer"], cfg["seed"])
        _finish(results, cfg, f"demo: {cfg['scenario']}", out, as_json)


DEMO = {
    "scenario": "split-mnist",
    "strategy": ["naive", "ewc:lambda_=100", "online-ewc:lambda_=100,gamma=0.9", "lwf",
                 "replay:capacity=500"],
    "epochs": 1, "batch_size": 10, "lr": 0.1, "optimizer": "sgd", "seed": 0,
}


def _loggers_factory(log: str | None, log_dir: Path,
                     opened: dict[str, list]) -> Callable[[str], list] | None:
    """Loggers per strategy label, kept in ``opened`` so the caller closes them."""
    if not log:
        return None
    from retain.loggers import make_loggers, parse_kinds

    kinds = parse_kinds(log)  # a typo fails before any training

    def loggers_for(label: str) -> list:
        opened[label] = make_loggers(kinds, log_dir, label)
        return opened[label]
    return loggers_for


def _log_figures(opened: dict[str, list], out: Path) -> None:
    """The report's plots of each strategy, once it is written."""
    from retain.report.runs import slug

    for label, loggers in opened.items():
        for name in (f"matrix-{slug(label)}", f"gap-{slug(label)}", "curves"):
            if (out / f"{name}.png").exists():
                for logger in loggers:
                    logger.log_figure(name, out / f"{name}.png")


def _finish(results: dict[str, RunResult], cfg: dict, title: str, out: Path | None,
            as_json: bool) -> None:
    print_table(results, title, err if as_json else Console())
    if out is not None:
        write_outputs(out, results, cfg, title)
    if as_json:
        json.dump({"config": cfg, "results": {k: r.to_dict() for k, r in results.items()}},
                  sys.stdout, indent=2)
        sys.stdout.write("\n")
