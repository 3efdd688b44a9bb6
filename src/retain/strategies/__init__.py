"""Strategies against forgetting. Each is one small class on the hook protocol of
:class:`~retain.strategies.base.Strategy`; any list of them composes."""

from __future__ import annotations

import inspect
from typing import Any

from retain.catalog import Catalog
from retain.errors import RetainError
from retain.strategies.agem import AGEM
from retain.strategies.base import Batch, Strategy
from retain.strategies.der import DER, DERPlusPlus
from retain.strategies.er_ace import ERACE
from retain.strategies.ewc import EWC
from retain.strategies.gdumb import GDumb
from retain.strategies.icarl import ICaRL
from retain.strategies.lwf import LwF
from retain.strategies.mas import MAS
from retain.strategies.naive import Naive
from retain.strategies.ncm import NCM
from retain.strategies.online_ewc import OnlineEWC
from retain.strategies.ranpac import RanPAC
from retain.strategies.replay import Replay
from retain.strategies.si import SI
from retain.strategies.slda import SLDA

#: every strategy by the name a run label and a checkpoint record: the core ones, the ones
#: applications define (imported on first use), and those of the ``retain.strategies``
#: entry-point group. Add one at run time with ``STRATEGIES.add(cls.name, cls)``.
STRATEGIES: Catalog = Catalog("strategy", {
    **{cls.name: cls for cls in (Naive, EWC, OnlineEWC, LwF, Replay, SI, MAS, AGEM, DER,
                                 DERPlusPlus, ERACE, GDumb, ICaRL, NCM, SLDA, RanPAC)},
    "divergence-guard": "retain.store.guard:DivergenceGuard",
    "replay-stratified": "retain.forecasting.stratified:StratifiedReplay",
}, group="retain.strategies")


def make_strategy(name: str, **params: Any) -> Strategy:
    """Build a strategy by name, checking hyper-parameter names before anything runs."""
    cls = STRATEGIES.require(name)
    accepted = inspect.signature(cls.__init__).parameters
    unknown = [k for k in params if k not in accepted]
    if unknown:
        names = [p for p in accepted if p != "self"]
        raise RetainError(
            f"strategy {name!r} has no hyper-parameter {', '.join(map(repr, unknown))}; "
            f"it accepts {', '.join(names)}"
        )
    try:
        return cls(**params)
    except TypeError as exc:
        raise RetainError(f"bad hyper-parameters for strategy {name!r}: {exc}") from None


__all__ = ["Batch", "Strategy", "Naive", "EWC", "OnlineEWC", "LwF", "Replay", "SI", "MAS",
           "AGEM", "DER", "DERPlusPlus", "ERACE", "GDumb", "ICaRL", "NCM", "SLDA", "RanPAC",
           "STRATEGIES",
           "make_strategy"]
