"""Model architectures shipped with retain, and a name registry for configs and the CLI.

To add a model, put it in its own module here, import it below and add it to
``MODELS`` under a short, hyphenated name.
"""

from __future__ import annotations

from retain.models.forecasting import FORECASTERS
from retain.models.tabular import MLP
from retain.models.vibration import VibrationCNN

MODELS: dict[str, type] = {
    "vibration-cnn": VibrationCNN,
    "mlp": MLP,
    **{f"forecast-{name}": cls for name, cls in FORECASTERS.items()},
}

__all__ = ["MODELS", "VibrationCNN"]
