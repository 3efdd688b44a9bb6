"""``retain forecast``: daily forecasting with incremental updates against retraining."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from retain.errors import RetainError

# results (the table) go to stdout, progress and what was written to stderr; the summary
# table has a dozen columns: wider than 80 when the stream is not a terminal
err = Console(stderr=True, width=None if sys.stderr.isatty() else 140)
results = Console(width=None if sys.stdout.isatty() else 140)


def _names(text: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in text.split(",") if n.strip())


def _load(data: str, csv: Path | None, time_col: str | None, target_col: str | None,
          covariates: str, known_future: str, freq: str | None, fill: str | None):
    from retain.forecasting.bundled import load
    from retain.forecasting.data import read_series

    if csv is None:
        given = [f"--{n}" for n, v in (("time-col", time_col), ("target-col", target_col),
                                       ("freq", freq), ("fill", fill)) if v]
        if given:
            raise RetainError(f"{', '.join(given)} appl{'y' if len(given) > 1 else 'ies'} to "
                              f"--csv only; --data {data} has its own")
        series = load(data)
        if covariates or known_future:  # the bundled series' columns, a choice of them
            series = series.with_inputs(_names(covariates) or None,
                                        _names(known_future) or None)
        return series
    if not time_col or not target_col:
        raise RetainError("--csv needs --time-col and --target-col")
    return read_series(csv, time_col, target_col, _names(covariates), _names(known_future),
                       freq, fill)


def _plot_days(text: str | None, times) -> list[int] | None:
    """Forecast days by date, checked against the days the run will forecast."""
    if not text:
        return None
    import pandas as pd

    dates = pd.DatetimeIndex(times).normalize()
    days = []
    for item in _names(text):
        try:
            day = pd.Timestamp(item).normalize()
        except ValueError:
            raise RetainError(f"--plot-days: cannot parse {item!r} as a date") from None
        hits = (dates == day).nonzero()[0]
        if not len(hits):
            raise RetainError(f"--plot-days: {item} is not a forecast day; they run from "
                              f"{times[0]:%Y-%m-%d} to {times[-1]:%Y-%m-%d}")
        days.append(int(hits[0]))
    return days


def register(app: typer.Typer) -> None:
    @app.command("forecast")
    def forecast(
        data: Annotated[str, typer.Option(
            help="bundled series: elecdemand, calls, taylor, weather-jfk|lga|ewr, "
                 "synthetic-level|trend|profile")] = "elecdemand",
        csv: Annotated[Path | None, typer.Option(
            "--csv", "--file", help="your own series: a CSV or Parquet file")] = None,
        time_col: Annotated[str | None, typer.Option(help="timestamp column of --csv")] = None,
        target_col: Annotated[str | None, typer.Option(help="column to forecast")] = None,
        covariates: Annotated[str, typer.Option(
            help="extra input columns, comma-separated (with --data: some of its own)")] =
        "",
        known_future: Annotated[str, typer.Option(
            help="covariates known in advance (calendar, weather forecast)")] = "",
        freq: Annotated[str | None, typer.Option(help="step, e.g. 30min, h, D (default: "
                                                 "inferred)")] = None,
        fill: Annotated[str | None, typer.Option(help="fill gaps and missing values: "
                                                 "interpolate or ffill")] = None,
        model: Annotated[str, typer.Option(help="cnn, mlp or gru")] = "cnn",
        approaches: Annotated[str | None, typer.Option(
            help="comma-separated (default: seasonal-naive,mstl,gbm,replay,hybrid,"
                 "hybrid-retrain); also available: frozen, incremental-sgd, "
                 "incremental-adam, replay-stratified, online-ewc, retrain, "
                 "incremental-adam-drift")] = None,
        lookback: Annotated[int | None, typer.Option(help="input steps (default: a week)")] =
        None,
        horizon: Annotated[int | None, typer.Option(help="forecast steps (default: a day)")] =
        None,
        stride: Annotated[int, typer.Option(help="steps between training windows")] = 1,
        pretrain_days: Annotated[int | None, typer.Option(
            help="initial training period (default 56, 14 with --quick)")] = None,
        days: Annotated[int | None, typer.Option(help="forecast at most this many days")] =
        None,
        retrain_every: Annotated[int | None, typer.Option(
            help="days between full retrains, the daily cost extrapolated (default 8, 2 with "
                 "--quick)")] = None,
        drift: Annotated[str, typer.Option(
            help="detectors on each approach's daily error: adwin,page-hinkley or none")] =
        "adwin,page-hinkley",
        validate: Annotated[int | None, typer.Option(
            help="choose settings: forecast only the last N days of the pre-training "
                 "period")] = None,
        plot_days: Annotated[str | None, typer.Option(
            help="dates to plot forecast vs actual, comma-separated")] = None,
        quick: Annotated[bool, typer.Option(help="a small run in seconds")] = False,
        hybrid_members: Annotated[int | None, typer.Option(
            help="correction networks the hybrid averages (default 3; 1 updates about a "
                 "third faster)")] = None,
        seed: Annotated[int, typer.Option()] = 0,
        threads: Annotated[int, typer.Option(
            help="torch CPU threads; one is fastest for models this small")] = 1,
        workers: Annotated[int, typer.Option(
            help="processes: 2 runs mstl beside the other approaches, its days "
            "shared by both")] = 2,
        out: Annotated[Path, typer.Option(help="report folder")] = Path("results/forecast"),
        json_out: Annotated[bool, typer.Option("--json", help="print the summary as JSON "
                                               "on stdout")] = False,
        log: Annotated[str | None, typer.Option(
            help="log the run to tensorboard, mlflow and/or csv (comma-separated)")] = None,
        log_dir: Annotated[Path, typer.Option(help="where --log writes")] = Path("retain-logs"),
    ) -> None:
        """Forecast each day, score it, then learn it: incremental updates against a frozen
        model, seasonal-naive and retraining from scratch."""
        import torch

        from retain.forecasting.backtest.report import summarize, write_report
        from retain.forecasting.backtest.run import plan, run_experiment
        from retain.forecasting.bundle import save_forecaster, save_hybrid
        from retain.forecasting.experiment import Experiment

        if threads < 1:
            raise RetainError(f"--threads must be >= 1, got {threads}")
        if hybrid_members is not None and hybrid_members < 1:
            raise RetainError(f"--hybrid-members must be >= 1, got {hybrid_members}")
        torch.set_num_threads(threads)
        if out.exists() and not out.is_dir():
            raise RetainError(f"--out {out} is a file; pass a folder")
        series = _load(data, csv, time_col, target_col, covariates, known_future, freq, fill)
        detectors = () if drift.strip() == "none" else _names(drift)
        base = Experiment.quick() if quick else Experiment()
        changes = {"model": model, "stride": stride,
                   "validate_days": validate, "detectors": detectors, "seed": seed}
        for name, value in (("lookback", lookback), ("horizon", horizon), ("days", days),
                            ("pretrain_days", pretrain_days)):
            if value is not None:
                changes[name] = value
        if approaches:
            changes["approaches"] = _names(approaches)
        hyper = dict(base.hyper)
        if retrain_every is not None:
            hyper["retrain_every"] = retrain_every
        if hybrid_members is not None:
            hyper["hybrid_members"] = hybrid_members
        if hyper != base.hyper:
            changes["hyper"] = hyper
        experiment = replace(base, **changes)
        planned = plan(series, experiment)  # every check before any work or writing
        from retain.forecasting.backtest.log import log_forecast
        from retain.loggers import make_loggers

        loggers = make_loggers(log, log_dir, f"forecast-{out.name}")
        chosen_days = _plot_days(plot_days, planned.forecast_times)

        start, cpu_start = time.perf_counter(), time.process_time()
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), TextColumn("{task.fields[mae]}"), console=err,
                      disable=json_out and not err.is_terminal) as bar:
            task = bar.add_task("pre-training", total=None, mae="")

            def progress(day, n, when, windowed):
                best = sorted(windowed.items(), key=lambda kv: kv[1])[:3]
                shown = "  ".join(f"{k} {v:.3f}" for k, v in best)
                bar.update(task, total=n, completed=day + 1, description=f"{when:%Y-%m-%d}",
                           mae=f"best 7-day MAE: {shown}")

            run, inputs = run_experiment(series, experiment, progress, workers, loggers)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        summary = summarize(run)
        summary["wall_seconds"], summary["cpu_seconds"] = wall, cpu
        config = {**experiment.to_dict(), "series": csv.name if csv else data,
                  "target": series.target, "freq": series.freq,
                  "threads": torch.get_num_threads(), "workers": workers}
        write_report(out, run, summary, config, chosen_days)
        log_forecast(loggers, summary, config, out)
        for logger in loggers:
            logger.close()
        # the best network of the standard family, which load_forecaster can rebuild
        networks = [n for n, a in summary["approaches"].items()
                    if a["kind"] == "incremental" and a["family"] == "cnn"]
        best = networks[0] if networks else None
        if best is not None and run.runs[best].model is not None:
            save_forecaster(out / "model", run.runs[best].model, experiment.model,
                            experiment.model_options, planned.spec, inputs.scaler, inputs.lead,
                            series.freq)
        hybrid = run.runs.get("hybrid")
        if hybrid is not None:  # as it stands after the last day, for load_hybrid
            from retain.forecasting.features import useful_cycles

            save_hybrid(out / "hybrid", hybrid, series, inputs.scaler, useful_cycles(series))
        deployed = _save_forecaster(out / "forecaster", planned.series, experiment, run, inputs)
        # with --json, stdout is the JSON alone: the table goes with the progress
        _print_table(summary, err if json_out else results)
        err.print(f"wall time {wall:.1f} s (CPU {cpu:.1f} s); wrote {out / 'index.html'}, "
                  f"results.json, forecasts.csv" + (f", model/ ({best})" if best else "")
                  + (", hybrid/" if hybrid is not None else "")
                  + (f", forecaster/ ({deployed})" if deployed else ""))
        if json_out:
            typer.echo(json.dumps(summary, indent=2, default=str))


def _save_forecaster(folder: Path, series, experiment, run, inputs) -> str | None:
    """The run's deployable forecaster (the hybrid, else the first deployable approach run)
    as it stands after the run's last day, for ``Forecaster.load``: it goes on from the day
    after it. Returns the approach saved, or ``None`` (said on stderr) where none can be."""
    from retain.forecasting.forecaster import DEPLOYABLE, Forecaster

    names = [n for n in experiment.approaches if n in DEPLOYABLE]
    if not names:
        return None
    name = "hybrid" if "hybrid" in names else names[0]
    if run.runs[name].failure:
        err.print(f"[dim]no forecaster/ written: {name} {run.runs[name].failure}[/dim]")
        return None
    try:
        period = series.steps_in(experiment.period)
        revealed = int(run.origin_rows[-1]) + period  # the run learnt its last day too
        learnt = replace(series, frame=series.frame.iloc[:revealed])
        Forecaster.from_run(learnt, experiment, run, inputs, name).save(folder, overwrite=True)
    except RetainError as exc:
        err.print(f"[dim]no forecaster/ written: {exc}[/dim]")
        return None
    return name


def _print_table(summary: dict, console: Console) -> None:
    from retain.forecasting.backtest.report import TABLE_NOTE, acceptance_text, summary_table

    table = Table(title=f"{summary['days']} forecast days, {summary['first_day'][:10]} to "
                        f"{summary['last_day'][:10]}")
    header, rows = summary_table(summary)
    for i, col in enumerate(header):
        table.add_column(col, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row))
    console.print(table)
    console.print(f"[dim]{TABLE_NOTE}[/dim]")
    console.print(acceptance_text(summary["acceptance"]), highlight=False)
    for name, a in summary["approaches"].items():
        if "note" in a:
            console.print(f"[dim]{name}: {a['note']}[/dim]")
