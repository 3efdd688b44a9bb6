"""One store version loaded for serving, and the slot that swaps versions atomically.

A :class:`Served` is built whole (checkpoint verified, learner rebuilt, normalisation read)
before :class:`ModelSlot` points at it; a request takes the slot's reference once and uses that
object to the end, so no request ever sees a half-loaded model and a swap never waits for
requests in flight.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from retain.learner import Learner
from retain.serve.checks import BadInput
from retain.store.tables import Normalizer, Schema


@dataclass(frozen=True)
class Served:
    """A version ready to predict: its learner, input scaling and the store's columns."""

    version: int
    learner: Learner
    normalizer: Normalizer
    schema: Schema

    def __post_init__(self) -> None:  # the scaling as arrays once, not per request
        scaler = self.normalizer.features
        per = (-1, 1) if self.schema.shape is not None else (-1,)  # signals: per channel
        object.__setattr__(self, "_mean", np.asarray(scaler.mean).reshape(per))
        object.__setattr__(self, "_std", np.asarray(scaler.std).reshape(per))

    @classmethod
    def load(cls, store: Any, version: int | None = None) -> Served:
        """Load ``version`` (default: the current one) of ``store`` (a :class:`Store`)."""
        chosen, schema, checkpoint = store.read(version)
        learner = checkpoint.learner(restore_rng=False)
        learner.model.eval()
        return cls(chosen.id, learner, Normalizer.from_dict(checkpoint.normalization),
                   Schema.from_dict(schema))

    def predict(self, x: np.ndarray) -> list[dict[str, Any]]:
        """Predictions for rows ``x`` [n, features], or windows [n, channels, time] (checked,
        finite): ``{"prediction": class
        or value, "probabilities": {class: p}}`` (probabilities for classification only)."""
        # the store's own arithmetic (float64, then float32), so predictions match Store.predict
        inputs = torch.from_numpy(((x - self._mean) / self._std).astype(np.float32))
        with torch.inference_mode():
            out = self.learner.model(inputs)
        finite = torch.isfinite(out.reshape(len(out), -1)).all(dim=1)
        if not finite.all():  # JSON has no inf or NaN: say which row, rather than fail (500)
            row = int((~finite).nonzero()[0, 0])
            raise BadInput(f"row {row}: the model's output is not finite for these values "
                           "(far outside the range it was trained on)")
        if self.schema.task == "regression":
            values = self.normalizer.target.inverse_target(out.reshape(-1).double())
            return [{"prediction": float(v)} for v in values.tolist()]
        probs = torch.softmax(out.double(), dim=1).tolist()
        names = self.class_names()
        return [{"prediction": names[max(range(len(p)), key=p.__getitem__)],
                 "probabilities": dict(zip(names, (round(q, 6) for q in p), strict=True))}
                for p in probs]

    def class_names(self) -> list[Any]:
        return list(self.schema.classes) if self.schema.classes else list(
            range(self.schema.n_outputs))

    def error(self, prediction: Any, label: Any) -> float:
        """The prequential error of one prediction, on the store's scale: 0/1 for a class,
        the squared error of standardised targets for a value (as the gate measures)."""
        if self.schema.task == "classification":
            return float(prediction != label)
        return ((float(prediction) - float(label)) / self.normalizer.target.std[0]) ** 2


class ModelSlot:
    """The version a worker serves now; ``swap`` replaces it in one reference assignment."""

    def __init__(self, served: Served):
        self._served = served
        self._lock = threading.Lock()  # one load at a time, never held by a request

    @property
    def served(self) -> Served:
        return self._served

    def swap(self, served: Served) -> None:
        self._served = served

    def refresh(self, store: Any, version: int) -> bool:
        """Load ``version`` if it is not the one served; ``True`` if the slot changed."""
        with self._lock:
            if self._served.version == version:
                return False
            self.swap(Served.load(store, version))
            return True
