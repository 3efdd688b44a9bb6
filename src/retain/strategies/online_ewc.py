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

    Example (one experience of random data; ``s`` is the strategy):

    >>> import torch
    >>> from torch import nn
    >>> from torch.utils.data import TensorDataset
    >>> from retain import Learner
    >>> _ = torch.manual_seed(0)
    >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    >>> s = OnlineEWC(lambda_=10.0, gamma=0.9)
    >>> learner = Learner(model, torch.optim.SGD(model.parameters(), lr=0.1), strategies=[s])
    >>> data = TensorDataset(torch.randn(32, 4), torch.randint(0, 3, (32,)))
    >>> _ = learner.learn(data, batch_size=8)
    >>> s.penalty.empty
    False
    """

    name = "online-ewc"

    def __init__(self, lambda_: float = 100.0, gamma: float = 1.0, fisher: str = "exact",
                 fisher_samples: int | None = 1024, fisher_batch_size: int = 32):
        super().__init__(lambda_, fisher, fisher_samples, fisher_batch_size)
        self.gamma = float(gamma)

    def consolidate(self, fisher: list, params: list) -> None:
        self.penalty.reanchor(fisher, params, decay=self.gamma)
