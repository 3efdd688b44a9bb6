"""Model architectures shipped with retain, and their catalog for configs, the CLI and
checkpoints.

To add a model, put it in its own module here, import it below and add it to ``MODELS`` under
a short, hyphenated name; another package adds one with a ``retain.models`` entry point.
"""

from __future__ import annotations

from retain.catalog import Catalog
from retain.models.forecasting import FORECASTERS
from retain.models.tabular import MLP

MODELS: Catalog = Catalog("model", {
    "vibration-cnn": "retain.vibration.model:VibrationCNN",  # defined with the vibration code
    "mlp": MLP,
    **{f"forecast-{name}": cls for name, cls in FORECASTERS.items()},
}, group="retain.models")

__all__ = ["MODELS", "MLP"]
