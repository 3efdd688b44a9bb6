"""retain as a column of the peers harness (``clbench``), beside plain PyTorch and Avalanche.

Copy this file into the harness's ``clbench/adapters/`` and run it with
``--libs plain,avalanche,clbench.adapters.retain_adapter:RetainAdapter`` (see
``benchmarks/avalanche/run.sh``). It imports ``clbench`` from the harness it is copied into and
``retain`` from this repository; retain never depends on either.

Hyper-parameters come from the harness's config, mapped to retain's names:
- EWC: Avalanche's ``mode="separate"`` with its importance (squared mini-batch gradients at the
  training batch size) is retain's ``EWC(fisher="batched-empirical")``; Avalanche's penalty
  ``λ Σ F (θ − θ*)²`` has no ``1/2``, so retain's ``lambda_`` is twice the harness's.
- Replay: same memory size, the same batch composition (incoming batch + the next
  ``batch_size`` rows of a shuffled pass through the memory, ``draw="passes"``: every stored
  row once a pass, the pass's last draw the rows left, as Avalanche's ReplayPlugin and the
  plain loop cycle their memory loader) and the same filling time:
  ``Replay(update="experience")`` offers each experience to the memory after it is learned,
  as Avalanche's ReplayPlugin does, and ``policy="experience-balanced"`` keeps an equal
  share per experience, as Avalanche's default ``ExperienceBalancedBuffer`` does (a
  reservoir is equal in expectation, but ``replay_accuracy.py`` measures the balanced memory
  1.7 points better on the throughput workload).
- LwF: same alpha and temperature. DER: retain's DER++ with the same alpha/beta, run the way
  Avalanche's ``DER`` runs it: the memory is filled after each experience with the logits of
  the model as it ends the experience (``update="experience"``), kept class-balanced, and one
  memory sample serves both terms (``independent=False``). Retain's default is the paper's
  DER++ (logits stored at insertion, two memory samples). Still different: Avalanche gives
  each class a reservoir share and cycles through the memory in shuffled passes; retain's
  class-balanced memory is CBRS and draws memory rows independently.
"""

import inspect
import os

import torch
from torch.utils.data import TensorDataset

from retain import Learner
from retain.evaluation import StreamEvaluator
from retain.strategies import EWC, DERPlusPlus, LwF, Naive, Replay

from .base import Adapter, RunOutput

#: the replay memory's draw: ``passes`` as Avalanche and the plain loop; ``RETAIN_REPLAY_DRAW=
#: random`` runs retain's default instead, and sources older than ``draw``
#: (``before_after.py --before``) draw at random whatever it says
DRAW = ({"draw": os.environ.get("RETAIN_REPLAY_DRAW", "passes")}
        if "draw" in inspect.signature(Replay.__init__).parameters else {})


def _strategy(name: str, params: dict, batch_size: int):
    if name == "naive":
        return Naive()
    if name == "ewc":
        return EWC(lambda_=2 * params["ewc_lambda"], fisher="batched-empirical",
                   fisher_batch_size=batch_size)
    if name == "replay":
        # Avalanche's ReplayPlugin fills its memory after each experience, an equal share of
        # each past experience, and cycles through it in shuffled passes of batch_size_mem
        # (= the training batch size) rows a step, also in an experience's shorter last step
        return Replay(capacity=params["mem_size"], batch_size=batch_size, update="experience",
                      policy="experience-balanced", **DRAW)
    if name == "lwf":
        return LwF(alpha=params["alpha"], temperature=params["temperature"])
    if name == "der":
        return DERPlusPlus(capacity=params["mem_size"], alpha=params["alpha"],
                           beta=params["beta"], batch_size=batch_size, policy="class-balanced",
                           update="experience", independent=False)
    raise ValueError(f"retain column has no strategy {name!r}")


class RetainAdapter(Adapter):
    name = "retain"
    strategies = ("naive", "ewc", "replay", "lwf", "der")

    def versions(self) -> dict:
        import retain
        return {"torch": torch.__version__, "retain": getattr(retain, "__version__", "dev")}

    def run(self, ctx, data) -> RunOutput:
        cfg, timer = ctx.cfg, ctx.timer
        with timer("setup"):
            model = ctx.make_model()
            learner = Learner(model, ctx.make_optimizer(model.parameters()),
                              strategies=[_strategy(ctx.strategy, ctx.params,
                                                    cfg["batch_size"])],
                              seed=ctx.seed + 1, eval_batch_size=cfg["eval_batch_size"])
            train = [TensorDataset(x, y) for x, y in data.train]
            tests = [TensorDataset(x, y) for x, y in data.test]
            evaluator = StreamEvaluator(learner, tests)
        n = len(train)
        acc_matrix = [None] * n
        for e, experience in enumerate(train):
            with timer("train"):
                learner.learn(experience, epochs=cfg["epochs"], batch_size=cfg["batch_size"])
            if cfg["eval_every_exp"] or e == n - 1:
                with timer("eval"):
                    acc_matrix[e] = [float(a) for a in evaluator()]
        sizes = torch.tensor([len(t) for t in tests], dtype=torch.float64)
        final = float((torch.tensor(acc_matrix[-1], dtype=torch.float64) * sizes).sum()
                      / sizes.sum())
        return RunOutput(acc_matrix=acc_matrix, final_acc=final,
                         train_samples=data.n_train * cfg["epochs"], model=model)
