"""A forecaster on disk: weights in safetensors, and beside them in JSON everything needed to
build the same inputs again (model name and options, window spec, channels, scaler)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from retain.errors import RetainError
from retain.forecasting.scaling import Scaler
from retain.forecasting.windows import WindowSpec
from retain.models.forecasting import FORECASTERS

WEIGHTS, META = "weights.safetensors", "forecaster.json"


def save_forecaster(folder: str | Path, model: torch.nn.Module, model_name: str,
                    model_options: dict[str, Any], spec: WindowSpec, scaler: Scaler,
                    lead: tuple[bool, ...], freq: str) -> Path:
    """Write the model and its input recipe into ``folder`` (created if needed): the network
    alone, which forecasts but cannot learn on; :meth:`Forecaster.save
    <retain.forecasting.forecaster.Forecaster.save>` keeps everything a deployed forecaster
    needs to go on learning."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    weights = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(weights, folder / WEIGHTS)
    meta = {"model": model_name, "model_options": model_options, "windows": asdict(spec),
            "scaler": scaler.to_dict(), "lead": list(lead), "freq": freq}
    (folder / META).write_text(json.dumps(meta, indent=2))
    return folder


def load_forecaster(folder: str | Path) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The model (eval mode) and its metadata, with ``scaler`` and ``windows`` rebuilt."""
    folder = Path(folder)
    try:
        meta = json.loads((folder / META).read_text())
        spec = WindowSpec(**meta["windows"])
        scaler = Scaler.from_dict(meta["scaler"])
        cls = FORECASTERS[meta["model"]]
        model = cls(len(scaler.names), spec.lookback, spec.horizon, **meta["model_options"])
        model.load_state_dict(load_file(folder / WEIGHTS))
    except FileNotFoundError as exc:
        raise RetainError(f"{folder} holds no saved forecaster ({exc.filename} missing)") \
            from None
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise RetainError(f"{folder} holds a damaged forecaster: {exc}") from None
    return model.eval(), {**meta, "scaler": scaler, "windows": spec}


HYBRID_META = "hybrid.json"


def save_hybrid(folder: str | Path, run: Any, series: Any, scaler: Scaler,
                cycles: tuple[str, ...]) -> Path:
    """Write the hybrid of ``run`` (its
    :class:`~retain.forecasting.backtest.protocol.ApproachRun`) as it stands after its last
    update into ``folder``: the correction network's weights, its
    current weight, the base settings chosen on the pre-training period and the input recipe
    (columns, scaler, calendar), so that :func:`load_hybrid` forecasts the next day from a
    user's history alone.

    Superseded by :meth:`Forecaster.save <retain.forecasting.forecaster.Forecaster.save>`
    (``out/forecaster/`` of ``retain forecast``): this folder forecasts but cannot learn a new
    day (no optimizer, replay memory, base state or intervals); it is kept for the folders
    already written."""
    folder = Path(folder)
    if run.model is None or not run.export or run.export.get("model") != "hybrid":
        raise RetainError(f"approach {run.name!r} is not a hybrid that can be saved")
    folder.mkdir(parents=True, exist_ok=True)
    weights = {k: v.detach().contiguous().cpu() for k, v in run.model.state_dict().items()}
    save_file(weights, folder / WEIGHTS)
    meta = {**run.export, "scaler": scaler.to_dict(), "cycles": list(cycles),
            "target": series.target, "covariates": list(series.covariates),
            "known_future": list(series.known_future), "freq": series.freq}
    (folder / HYBRID_META).write_text(json.dumps(meta, indent=2))
    return folder


class SavedHybrid:
    """A hybrid loaded by :func:`load_hybrid`: ``forecast(series)`` gives the next
    ``horizon`` steps after the end of ``series`` (refitting the base on its trailing window,
    as the daily run does each morning; a base chosen with a weekly ETS fit
    (``base_ets_fit_every`` 7) gets a fresh ETS fit too, where the run would have reused
    that week's)."""

    def __init__(self, model: torch.nn.Module, meta: dict[str, Any]):
        self.model, self.meta = model.eval(), meta
        self.scaler = Scaler.from_dict(meta["scaler"])

    @property
    def horizon(self) -> int:
        return int(self.meta["horizon"])

    def history_needed(self) -> int:
        """Rows of history a forecast needs: two cycles of the base's longest season (and
        one more day for the base's last-day error), and the network's lookback."""
        m = self.meta
        return max(2 * max(m["base_seasons"]) + 1 + m["period"], m["lookback"])

    def forecast(self, series: Any, future: Any = None) -> Any:
        """Forecasts [horizon] (a pandas Series on the next steps' times) from ``series``, a
        :class:`~retain.forecasting.data.Series` with the training columns; ``future``: a
        DataFrame of the known-future covariates over those steps (required if any)."""
        import pandas as pd

        from retain.forecasting.features import make_inputs
        from retain.forecasting.hybrid import Hybrid
        from retain.forecasting.seasonal import SeasonalBase

        m, H = self.meta, self.horizon
        if series.target != m["target"] or list(series.covariates) != m["covariates"]:
            raise RetainError(f"the series has target {series.target!r} and covariates "
                              f"{list(series.covariates)}; the model was trained on target "
                              f"{m['target']!r} and covariates {m['covariates']}")
        n = len(series)
        if n < self.history_needed():
            raise RetainError(f"a forecast needs at least {self.history_needed()} rows of "
                              f"history (two cycles of the {max(m['base_seasons'])}-step "
                              f"season and one day), got {n}")
        inputs = make_inputs(series, n, H, tuple(m["cycles"]), scaler=self.scaler)
        times = series.extended_index(H)[n:]
        if m["known_future"]:
            _fill_future(inputs, self.scaler, m["known_future"], future, times)
        hybrid = Hybrid(m["base_seasons"], H, m["period"], m["lookback"], (m["base_window"],),
                        width=m["width"], jump=m["jump"])
        hybrid.prepare(inputs, n, m["period"])
        base = SeasonalBase(hybrid.target, m["base_seasons"], H, m["period"], n,
                            m["base_window"], m["jump"])
        with torch.inference_mode():
            window = hybrid._build_window(base, n)[None]
            correction = self.model(window)[0].mean(0).double().numpy()  # the members' mean
        z = base.at(n) + m["correction_weight"] * correction
        values = self.scaler.inverse_target(torch.from_numpy(z)).numpy()
        return pd.Series(values, index=times, name=series.target)


def _fill_future(inputs: Any, scaler: Scaler, columns: list[str], future: Any,
                 times: Any) -> None:
    """Put the known-future covariates over the horizon into the lead channels' last H
    positions (where the run's inputs held them)."""
    H = len(times)
    if future is None:
        raise RetainError(f"the model uses the known-future column(s) {columns}: pass their "
                          f"values over the next {H} steps as future=DataFrame")
    missing = [c for c in columns if c not in future.columns]
    if missing:
        raise RetainError(f"future lacks the known-future column(s) {missing}")
    if len(future) != H:
        raise RetainError(f"future has {len(future)} rows; the forecast needs {H}")
    for c in columns:
        values = future[c].to_numpy(np.float64)
        if not np.isfinite(values).all():
            raise RetainError(f"future column {c!r} has a missing or infinite value at row "
                              f"{int(np.flatnonzero(~np.isfinite(values))[0]) + 1}")
        j = scaler.names.index(c)
        inputs.features[-H:, j] = torch.from_numpy(
            (values - scaler.mean[j]) / scaler.std[j]).float()


def load_hybrid(folder: str | Path) -> SavedHybrid:
    """The hybrid saved by :func:`save_hybrid` (``out/hybrid/`` of ``retain forecast``).

    Superseded by :meth:`Forecaster.load <retain.forecasting.forecaster.Forecaster.load>`,
    whose forecaster also learns each new day (see :func:`save_hybrid`)."""
    from retain.forecasting.correction import CorrectionEnsemble, from_single_network

    folder = Path(folder)
    try:
        meta = json.loads((folder / HYBRID_META).read_text())
        if meta.get("model") != "hybrid":
            raise ValueError(f"model is {meta.get('model')!r}, not 'hybrid'")
        channels = len(meta["scaler"]["names"]) + 2
        model = CorrectionEnsemble(channels, meta["lookback"], meta["horizon"],
                                   meta["width"], meta.get("members", 1))
        weights = load_file(folder / WEIGHTS)
        if "members" not in meta:  # saved before ensembles: one network
            weights = from_single_network(weights)
        model.load_state_dict(weights)
        return SavedHybrid(model, meta)
    except FileNotFoundError as exc:
        raise RetainError(f"{folder} holds no saved hybrid ({exc.filename} missing)") from None
    except (KeyError, TypeError, ValueError, RuntimeError, json.JSONDecodeError) as exc:
        raise RetainError(f"{folder} holds a damaged hybrid: {exc}") from None
