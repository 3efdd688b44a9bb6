"""retain: incremental training of neural networks without forgetting."""

from retain import datasets, metrics, scenarios, strategies
from retain.errors import RetainError, RetainWarning
from retain.learner import Learner, LearnStats
from retain.metrics import RunResult

__version__ = "0.1.0"
__all__ = ["Learner", "LearnStats", "RunResult", "RetainError", "RetainWarning", "datasets",
           "metrics", "scenarios", "strategies"]
