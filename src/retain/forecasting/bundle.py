"""A forecaster on disk: weights in safetensors, and beside them in JSON everything needed to
build the same inputs again (model name and options, window spec, channels, scaler)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from retain.errors import RetainError
from retain.forecasting.scaling import Scaler
from retain.forecasting.windows import WindowSpec
from retain.models.forecasting import FORECASTERS

WEIGHTS, META = "weights.safetensors", "forecaster.json"


def save_forecaster(folder: Path, model: torch.nn.Module, model_name: str,
                    model_options: dict[str, Any], spec: WindowSpec, scaler: Scaler,
                    lead: tuple[bool, ...], freq: str) -> Path:
    """Write the model and its input recipe into ``folder`` (created if needed)."""
    folder.mkdir(parents=True, exist_ok=True)
    weights = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(weights, folder / WEIGHTS)
    meta = {"model": model_name, "model_options": model_options, "windows": asdict(spec),
            "scaler": scaler.to_dict(), "lead": list(lead), "freq": freq}
    (folder / META).write_text(json.dumps(meta, indent=2))
    return folder


def load_forecaster(folder: Path) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The model (eval mode) and its metadata, with ``scaler`` and ``windows`` rebuilt."""
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
