"""``retain init|update|history|rollback|predict|export``: the daily job on a model store."""

from __future__ import annotations

import inspect
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from retain.config import build_strategies, parse_value, read_options
from retain.errors import RetainError

err = Console(stderr=True)

StoreOpt = Annotated[Path, typer.Option("--store", help="the store folder")]
DataOpt = Annotated[Path, typer.Option(
    "--data", help="CSV or Parquet file, one row per sample; a .npz of signal windows "
                   "(x [n, channels, time], label, recording) or a Parquet file whose column "
                   "x holds one window per row; or a folder of recordings (CWRU .mat files) or "
                   "a manifest of them (columns path, label[, fs]): windows of 2048 samples")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print machine-readable JSON to stdout")]
WaitOpt = Annotated[float, typer.Option(
    "--wait", help="seconds to wait for another update or rollback to finish")]
VersionOpt = Annotated[int | None, typer.Option("--version", help="version id (default: "
                                                "the current one)")]


def _store(path: Path):
    """The store in ``path``: forecasting or tabular, as it was made (a new folder: tabular)."""
    from retain.store.forecasts import open_store
    from retain.store.registry import REGISTRY_FILE
    from retain.store.store import Store

    return open_store(path) if (Path(path) / REGISTRY_FILE).is_file() else Store(path)


def _is_forecast(store) -> bool:
    from retain.store.forecasts import ForecastStore

    return isinstance(store, ForecastStore)


def _names(value: str | None) -> list[str]:
    return [c.strip() for c in value.split(",") if c.strip()] if value else []


def _init_keys() -> list[str]:
    from retain.store.store import Store

    names = [p for p in inspect.signature(Store.init).parameters if p not in ("self", "data")]
    return [("strategy" if p == "strategies" else p) for p in names]


def _read_config(path: Path | None) -> dict[str, Any]:
    """Options of ``retain init`` from a YAML/JSON file (keys as in :meth:`Store.init`)."""
    return read_options(path, _init_keys())


def _model_args(pairs: list[str]) -> dict[str, Any]:
    args = {}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        if not eq or not key.strip():
            raise RetainError(f"--model-arg {pair!r} must be key=value (e.g. hidden=[64,64])")
        args[key.strip()] = parse_value(value.strip())
    return args


def _signals(data: Path, window: int = 2048, fs: float | None = None) -> Path:
    """A folder of recordings (CWRU .mat files, ...) or a manifest listing them (a table with
    the columns path and label, as ``retain run --scenario recordings`` reads) as a .npz of
    windows the store reads: each recording cut into non-overlapping windows in time order,
    with its label and name. Anything else is passed on as it is."""
    if not (Path(data).is_dir() or _is_manifest(Path(data))):
        return data
    import tempfile

    import numpy as np

    from retain.vibration import load_recordings
    from retain.vibration.windows import windows_of

    recordings = load_recordings(data, fs)
    xs, labels, names = [], [], []
    for r in recordings:
        x, _ = windows_of(r, 0, r.signal.shape[-1], window, window, "the recording")
        xs.append(x.numpy())
        labels += [r.label] * len(x)
        names += [r.meta["file"]] * len(x)
    out = Path(tempfile.mkdtemp(prefix="retain-signals-")) / f"{Path(data).name}.npz"
    np.savez(out, x=np.concatenate(xs), label=np.array(labels), recording=np.array(names))
    err.print(f"{data}: {len(recordings)} recordings at {recordings.fs:g} Hz, "
              f"{len(labels)} windows of {window}")
    return out


def _is_manifest(path: Path) -> bool:
    """A CSV or Parquet file whose columns include path and label (its header read first, so
    a large data table is not read twice), the first path a file."""
    from retain.datasets.files import TABLE_SUFFIXES, file_suffix, read_table_file

    suffix = file_suffix(path) if path.is_file() else None
    if suffix not in TABLE_SUFFIXES:
        return False
    try:
        if suffix in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            columns = pq.read_schema(path).names
        else:
            import pandas as pd

            columns = pd.read_csv(path, nrows=0, sep="\t" if suffix == ".tsv" else ",").columns
    except Exception:  # unreadable here: the table reader says what is wrong
        return False
    if not {"path", "label"} <= set(map(str, columns)):
        return False
    paths = read_table_file(path, suffix)["path"]
    first = Path(str(paths.iloc[0])) if len(paths) else None
    return first is not None and (first if first.is_absolute() else path.parent / first).is_file()


def _summary(version) -> str:
    return f"version {version.id} {version.status}: {version.reason}"


def register(app: typer.Typer) -> None:
    @app.command("init")
    def init(
        store: StoreOpt,
        data: DataOpt,
        model: Annotated[str | None, typer.Option(help="built-in model (default mlp)")] = None,
        model_arg: Annotated[list[str] | None, typer.Option(
            "--model-arg", help="model argument key=value, repeatable (hidden=[64,64])")] = None,
        config: Annotated[Path | None, typer.Option(
            help="YAML/JSON file with the options below (flags override it)")] = None,
        strategy: Annotated[str | None, typer.Option(
            help="strategies, composed with '+' (default replay), e.g. "
                 "'online-ewc:lambda_=10+replay:capacity=1000'")] = None,
        label: Annotated[str | None, typer.Option(help="label/target column (default label)")
                         ] = None,
        time: Annotated[str | None, typer.Option(help="time column (orders rows; optional)")
                        ] = None,
        task: Annotated[str | None, typer.Option(
            help="classification, regression (default: from the label column) or forecast "
                 "(a series: the versions are daily forecasters)")] = None,
        optimizer: Annotated[str | None, typer.Option(help="sgd, adam, adamw, rmsprop")] = None,
        lr: Annotated[float | None, typer.Option(help="learning rate")] = None,
        epochs: Annotated[int | None, typer.Option(help="epochs per update")] = None,
        batch_size: Annotated[int | None, typer.Option(help="mini-batch size")] = None,
        holdout: Annotated[str | None, typer.Option(
            help="rows of each data file kept out to test on: 'recent' (default) or 'random' "
                 "(for files that span a cycle, e.g. a day of half-hourly demand)")] = None,
        holdout_fraction: Annotated[float | None, typer.Option(
            help="fraction of each data file kept out to test on (default 0.2)")] = None,
        holdout_window: Annotated[int | None, typer.Option(
            help="updates whose held-out rows are pooled into the holdout before they are "
                 "learned (default 1; e.g. 4 for small daily files)")] = None,
        min_holdout: Annotated[int | None, typer.Option(
            help="fewest rows the gate judges a set on (default 20)")] = None,
        significance: Annotated[float | None, typer.Option(
            help="level of the gate's paired test on an error rise (default 0.05)")] = None,
        seed: Annotated[int | None, typer.Option(help="seed for weights and sampling")] = None,
        covariates: Annotated[str | None, typer.Option(
            help="--task forecast: comma-separated input columns besides the label")] = None,
        known_future: Annotated[str | None, typer.Option(
            help="--task forecast: covariates known over the horizon in advance (calendar, "
                 "weather forecast)")] = None,
        horizon: Annotated[int | None, typer.Option(
            help="--task forecast: steps per forecast (default: one day)")] = None,
        approach: Annotated[str, typer.Option(
            help="--task forecast: hybrid, replay, ... (retain.forecasting.forecaster."
                 "DEPLOYABLE)")] = "hybrid",
        keep_versions: Annotated[int, typer.Option(
            help="--task forecast: versions whose saved forecaster is kept (the current one "
                 "always; older ones are pruned after each update)")] = 30,
        quick: Annotated[bool, typer.Option(
            help="--task forecast: small model and search (seconds; a first look, tests)")
                         ] = False,
        as_json: JsonOpt = False,
    ) -> None:
        """Create a store and train its first version on DATA (history).

        With --task forecast, DATA is a series (one row per time step) and the versions are daily
        forecasters (docs/forecast-store.md)."""
        if task == "forecast":
            from retain.forecasting.experiment import Experiment
            from retain.store.forecasts import ForecastStore

            version = ForecastStore(store).init(
                data, time=time or "time", label=label or "label",
                covariates=_names(covariates), known_future=_names(known_future),
                horizon=horizon, approach=approach, seed=seed or 0, keep_versions=keep_versions,
                experiment=Experiment.quick() if quick else None)
            err.print(f"created {store} with {_summary(version)} "
                      f"({version.metrics['days_learned']} days learnt)")
            if as_json:
                typer.echo(json.dumps(version.to_dict()))
            return
        options = _read_config(config)
        given = {"model": model, "strategy": strategy, "label": label, "time": time,
                 "task": task, "optimizer": optimizer, "lr": lr, "epochs": epochs,
                 "batch_size": batch_size, "holdout": holdout,
                 "holdout_fraction": holdout_fraction, "holdout_window": holdout_window,
                 "min_holdout": min_holdout, "significance": significance, "seed": seed}
        options.update({k: v for k, v in given.items() if v is not None})
        options["model_args"] = {**options.get("model_args", {}), **_model_args(model_arg or [])}
        if "strategy" in options:
            options["strategies"] = build_strategies(options.pop("strategy"))
        version = _store(store).init(_signals(data), **options)
        err.print(f"created {store} with {_summary(version)} "
                  f"(holdout error {version.metrics['holdout_error']:.4f})")
        if as_json:
            typer.echo(json.dumps(version.to_dict()))

    @app.command("update")
    def update(
        store: StoreOpt,
        data: DataOpt,
        holdout: Annotated[str | None, typer.Option(
            help="rows to test on: 'recent' (the newest rows of DATA, not learned), 'random' "
                 "(a random sample of them) or a file (default: the store's setting)")] = None,
        tolerance: Annotated[float | None, typer.Option(
            help="how much the holdout or replay-memory error may rise (default 0.02); for "
                 "a forecast store, how much learning may raise the learnt days' MAE "
                 "(default 0.1)")] = None,
        force: Annotated[bool, typer.Option(help="learn data the store already learned")
                         ] = False,
        wait: WaitOpt = 60.0,
        as_json: JsonOpt = False,
        max_negative_flips: Annotated[float | None, typer.Option(
            help="reject a candidate that breaks more than this share of the holdout or "
                 "replay-memory rows the current version gets right (e.g. 0.05)")] = None,
        log: Annotated[str | None, typer.Option(
            help="log the update to tensorboard, mlflow and/or csv (comma-separated)")] = None,
        log_dir: Annotated[Path, typer.Option(help="where --log writes")] = Path("retain-logs"),
    ) -> None:
        """Learn DATA on top of the current version; promote it only if it passes the gate.
        Exit status 0: promoted, 1: rejected, 2: error."""
        from retain.distributed import close, init
        from retain.loggers import make_loggers

        opened = _store(store)
        if _is_forecast(opened):
            versions = opened.update(data, wait=wait, **(
                {} if tolerance is None else {"tolerance": tolerance}))
            for v in versions:
                err.print(f"{v.metrics['day'][:10]}: MAE {v.metrics['mae']:.4g} "
                          f"(s-naive {_number(v.metrics.get('snaive_mae'))}); "
                          f"{_summary(v)}", highlight=False)
            if not versions:
                err.print("no day completed yet; the rows are kept for the next update")
            if as_json:
                typer.echo(json.dumps([v.to_dict() for v in versions]))
            if any(v.status != "promoted" for v in versions):
                raise typer.Exit(1)
            return
        if tolerance is None:
            tolerance = 0.02
        world = init()  # under torchrun: every rank trains, rank 0 writes and reports
        loggers = make_loggers(log if world.main else None, log_dir,
                               f"store-{Path(store).name}")
        try:
            version = opened.update(_signals(data), holdout=holdout, tolerance=tolerance,
                                           force=force, wait=wait, loggers=loggers,
                                           max_negative_flips=max_negative_flips)
        finally:
            for logger in loggers:
                logger.close()
            close()
        if world.main:
            err.print(_summary(version), highlight=False)
        if as_json and world.main:
            typer.echo(json.dumps(version.to_dict()))
        if version.status != "promoted":
            raise typer.Exit(1)

    @app.command("history")
    def history(store: StoreOpt, as_json: JsonOpt = False) -> None:
        """Every version: the version it learned from, status, end of its data, holdout and
        replay-memory errors, and why ('*' marks the current one)."""
        opened = _store(store)
        versions = opened.history()
        if as_json:
            typer.echo(json.dumps([v.to_dict() for v in versions], indent=1))
            return
        if _is_forecast(opened):
            wide = None if sys.stdout.isatty() else 110  # piped: rows whole, not folded
            Console(width=wide).print(_forecast_history(store, versions))
            return
        table = Table(title=f"retain store {store}")
        for col in ("version", "from", "status", "data until", "holdout", "memory", "NFR"):
            table.add_column(col, no_wrap=True, justify="left" if col in (
                "status", "data until") else "right")
        table.add_column("reason", overflow="fold", min_width=12)
        for v in versions:
            table.add_row(f"{'*' if v.current else ''}{v.id}", str(v.parent or ""), v.status,
                          (v.data_end or "")[:16].replace("T", " "),
                          _number(v.metrics.get("holdout_error")),
                          _number(v.metrics.get("memory_error")),
                          _number(v.metrics.get("holdout_negative_flip_rate")), v.reason)
        Console().print(table)

    @app.command("rollback")
    def rollback(
        store: StoreOpt,
        to: Annotated[int | None, typer.Option(
            help="version to restore (default: the current version's parent)")] = None,
        wait: WaitOpt = 60.0,
    ) -> None:
        """Make an earlier version current again."""
        version = _store(store).rollback(to=to, wait=wait)
        err.print(f"version {version.id} is current again")

    @app.command("predict")
    def predict(
        store: StoreOpt,
        data: Annotated[Path | None, typer.Option(
            "--data", help="CSV or Parquet file, one row per sample; .npz windows or a folder "
                           "of recordings; for a forecast store, the known-future covariates "
                           "over the horizon (optional)")] = None,
        version: VersionOpt = None,
        per: Annotated[str, typer.Option(
            help="'row' (each row or window) or 'recording' (windows of signals: the "
                 "majority vote of each recording's windows)")] = "row",
    ) -> None:
        """Write predictions for DATA as CSV to stdout.

        For a forecast store, the next horizon: time, forecast, lower/upper 80% and 95%
        bounds, version."""
        opened = _store(store)
        if _is_forecast(opened):
            opened.predict(data, version=version).to_csv(sys.stdout, index=False,
                                                         float_format="%.6g")
            return
        if data is None:
            raise RetainError("--data is needed: the rows to predict")
        opened.predict(_signals(data), version=version, per=per).to_csv(sys.stdout, index=False)

    @app.command("export")
    def export(
        store: StoreOpt,
        out: Annotated[Path, typer.Option(help="the .safetensors file to write (a forecast "
                                               "store: the folder Forecaster.load reads)")],
        version: VersionOpt = None,
    ) -> None:
        """Write a version's plain weights (safetensors, with its recipe as metadata)."""
        path = _store(store).export(out, version=version)
        err.print(f"wrote {path}")


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def _forecast_history(store: Path, versions) -> Table:
    table = Table(title=f"retain forecast store {store}")
    # MAE: the day's forecast made before it was measured; after: the candidate's, once
    # it learnt the day (the gate compares them); s-naive: the same hours a season earlier
    for col in ("version", "from", "status", "day", "MAE", "after", "s-naive"):
        table.add_column(col, no_wrap=True, justify="left" if col in ("status", "day")
                         else "right")
    table.add_column("reason", overflow="fold", min_width=12)
    for v in versions:
        m = v.metrics
        table.add_row(f"{'*' if v.current else ''}{v.id}", str(v.parent or ""), v.status,
                      (m.get("day") or v.data_end or "")[:10],
                      _number(m.get("mae")), _number(m.get("hindsight_mae")),
                      _number(m.get("snaive_mae")), v.reason)
    return table
