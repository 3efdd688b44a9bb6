"""Online EWC (Schwarz et al., ICML 2018 "Progress & Compress"; Chaudhry et al. 2018)."""

from __future__ import annotations

from retain.strategies.ewc import EWC


class OnlineEWC(EWC):
    """EWC with one running Fisher: ``F* ← γ F* + F_t`` and a single anchor at the latest
    weights, so memory stays constant in the number of experiences.

    Args:
        lambda_: strength of the penalty.
        gamma: decay of the running Fisher (1.0 keeps all of it).
        fisher, fisher_samples, fisher_batch_size: as in :class:`~retain.strategies.EWC`.
    """

    name = "online-ewc"

    def __init__(self, lambda_: float = 100.0, gamma: float = 1.0, fisher: str = "exact",
                 fisher_samples: int | None = 1024, fisher_batch_size: int = 32):
        super().__init__(lambda_, fisher, fisher_samples, fisher_batch_size)
        self.gamma = float(gamma)

    def consolidate(self, fisher: list, params: list) -> None:
        self.penalty.reanchor(fisher, params, decay=self.gamma)
