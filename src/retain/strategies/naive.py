"""Naive fine-tuning: plain SGD on each new batch, nothing to prevent forgetting."""

from retain.strategies.base import Strategy


class Naive(Strategy):
    """Fine-tuning; the lower bound every other strategy is measured against.

    >>> Naive()
    Naive()
    """

    name = "naive"
    distributed = True
