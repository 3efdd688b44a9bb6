"""Hand-written PyTorch loops: the reference every retain figure is divided by.

Each class is the loop a good engineer would write for one strategy, with the same math as
retain's (same data order, optimizer, replay sampling, penalty, consolidation) and none of
its machinery: no hooks, no validation, no batch objects. Penalties are written the textbook
way (a term per past task through autograd), because that is what a plain loop does; retain
folds them into one quadratic, which is an algorithmic difference the ratio shows.

Consolidation that is not per-step work reuses retain's estimators (``fisher_diagonal``,
``output_sensitivity``): their own cost is benchmarked separately (``fisher_cost.py``).
"""

from __future__ import annotations

import copy
import time

import torch
import torch.nn.functional as F
from torch import nn

from retain.buffers import ReplayBuffer
from retain.importance import fisher_diagonal
from retain.strategies.mas import output_sensitivity

#: hyper-parameters shared by the retain and the plain side of every comparison
PARAMS: dict[str, dict] = {
    "naive": {},
    # λ small enough that SGD follows the penalty on both workloads (lr·λ·max F < 2): a
    # diverging run would still compare equal weights, but it is not a workload anyone runs
    "ewc": {"lambda_": 10.0, "fisher": "empirical", "fisher_samples": 100},
    "online-ewc": {"lambda_": 10.0, "gamma": 0.9, "fisher": "empirical",
                   "fisher_samples": 100},
    "lwf": {"alpha": 1.0, "temperature": 2.0},
    "replay": {"capacity": 500, "seed": 0},
    "der": {"capacity": 500, "alpha": 0.3, "seed": 0},
    "derpp": {"capacity": 500, "alpha": 0.1, "beta": 0.5, "seed": 0},
    "agem": {"capacity": 500, "sample_size": 256, "seed": 0},
    "er-ace": {"capacity": 500, "seed": 0},
    "si": {"c": 1.0, "xi": 0.1},
    "mas": {"lambda_": 0.01, "samples": 100},  # λ = 1 diverged (weights ~1e10) at batch 10
}


def subset_chunks(x: torch.Tensor, y: torch.Tensor, size: int, limit: int,
                  generator: torch.Generator):
    """``(x, y, None)`` mini-batches of a random subset of ``limit`` samples (drawn like
    ``Learner.batches``), the form retain's estimators take."""
    if limit < x.shape[0]:
        idx = torch.randperm(x.shape[0], generator=generator)[:limit]
        x, y = x[idx], y[idx]
    return ((x[i : i + size], y[i : i + size], None) for i in range(0, x.shape[0], size))


class Naive:
    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, **params):
        self.model, self.opt = model, optimizer
        self.params = [p for p in model.parameters() if p.requires_grad]
        for key, value in params.items():
            setattr(self, key, value)

    def loss(self, x, y):
        return F.cross_entropy(self.model(x), y)

    def step(self, x, y):
        loss = self.loss(x, y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()

    def consolidate(self, x, y, generator):
        pass


class EWC(Naive):
    """``loss + λ/2 Σ_t Σ F_t (θ − θ*_t)²``, one term per past experience."""

    def __init__(self, model, optimizer, **params):
        super().__init__(model, optimizer, **params)
        self.tasks: list[tuple[list, list]] = []

    def loss(self, x, y):
        loss = F.cross_entropy(self.model(x), y)
        for fisher, anchor in self.tasks:
            for p, f, a in zip(self.params, fisher, anchor, strict=True):
                loss = loss + self.lambda_ / 2 * (f * (p - a) ** 2).sum()
        return loss

    def estimate_fisher(self, x, y, generator):
        batches = subset_chunks(x, y, 1024, self.fisher_samples, generator)
        return fisher_diagonal(self.model, batches, kind=self.fisher,
                               loss_fn=nn.CrossEntropyLoss())

    def consolidate(self, x, y, generator):
        fisher = self.estimate_fisher(x, y, generator)
        self.tasks.append((fisher, [p.detach().clone() for p in self.params]))


class OnlineEWC(EWC):
    """One running Fisher ``F ← γF + F_t`` anchored at the latest weights."""

    def consolidate(self, x, y, generator):
        fisher = self.estimate_fisher(x, y, generator)
        if self.tasks:
            fisher = [self.gamma * old + new for old, new in zip(self.tasks[0][0], fisher,
                                                                  strict=True)]
        self.tasks = [(fisher, [p.detach().clone() for p in self.params])]


class LwF(Naive):
    def __init__(self, model, optimizer, **params):
        super().__init__(model, optimizer, **params)
        self.teacher, self.seen = None, set()

    def loss(self, x, y):
        out = self.model(x)
        loss = F.cross_entropy(out, y)
        if self.teacher is not None:
            with torch.no_grad():
                target = self.teacher(x)
            t = self.temperature
            kd = F.kl_div(F.log_softmax(out[:, self.units] / t, dim=1),
                          F.softmax(target[:, self.units] / t, dim=1), reduction="batchmean")
            loss = loss + self.alpha * kd
        return loss

    def consolidate(self, x, y, generator):
        self.teacher = copy.deepcopy(self.model).eval().requires_grad_(False)
        self.seen |= set(y.unique().tolist())
        self.units = torch.tensor(sorted(self.seen))


class Replay(Naive):
    """Every step: the incoming batch plus as many rows drawn from a reservoir memory."""

    def __init__(self, model, optimizer, **params):
        super().__init__(model, optimizer, **params)
        self.memory = ReplayBuffer(self.capacity, seed=self.seed)

    def step(self, x, y):
        if self.memory.size:
            mem = self.memory.sample(x.shape[0], ("x", "y"))
            xb, yb = torch.cat((x, mem["x"])), torch.cat((y, mem["y"]))
        else:
            xb, yb = x, y
        loss = F.cross_entropy(self.model(xb), yb)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.memory.add(x=x, y=y)


class DER(Replay):
    """Replay the stored logits: ``CE(new) + α MSE(f(x'), z')``."""

    def step(self, x, y):
        n = x.shape[0]
        if self.memory.size:
            mem = self.memory.sample(n)
            out = self.model(torch.cat((x, mem["x"])))
            loss = F.cross_entropy(out[:n], y) + self.alpha * F.mse_loss(out[n:], mem["logits"])
        else:
            out = self.model(x)
            loss = F.cross_entropy(out, y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.memory.add(x=x, y=y, logits=out[:n])


class DERPlusPlus(Replay):
    """DER plus ``β CE`` on a second, independent memory sample."""

    def step(self, x, y):
        n = x.shape[0]
        if self.memory.size:
            m1, m2 = self.memory.sample(n), self.memory.sample(n)
            out = self.model(torch.cat((x, m1["x"], m2["x"])))
            loss = (F.cross_entropy(out[:n], y)
                    + self.alpha * F.mse_loss(out[n : 2 * n], m1["logits"])
                    + self.beta * F.cross_entropy(out[2 * n :], m2["y"]))
        else:
            out = self.model(x)
            loss = F.cross_entropy(out, y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.memory.add(x=x, y=y, logits=out[:n])


class AGEM(Naive):
    """Project the gradient when it points against the memory's reference gradient."""

    def __init__(self, model, optimizer, **params):
        super().__init__(model, optimizer, **params)
        self.memory = ReplayBuffer(self.capacity, seed=self.seed)

    def step(self, x, y):
        loss = F.cross_entropy(self.model(x), y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.memory.size:
            mem = self.memory.sample(self.sample_size)
            ref_loss = F.cross_entropy(self.model(mem["x"]), mem["y"])
            ref = torch.cat([r.flatten() for r in torch.autograd.grad(ref_loss, self.params)])
            g = torch.cat([p.grad.flatten() for p in self.params])
            dot = g @ ref
            if dot < 0:
                g -= dot / (ref @ ref) * ref
                for p, part in zip(self.params, g.split([p.numel() for p in self.params]),
                                   strict=True):
                    p.grad.copy_(part.view_as(p))
        self.opt.step()

    def consolidate(self, x, y, generator):
        if self.capacity < x.shape[0]:
            idx = torch.randperm(x.shape[0], generator=generator)[: self.capacity]
            x, y = x[idx], y[idx]
        self.memory.add(x=x, y=y)


class ERACE(Replay):
    """Incoming rows: cross-entropy over the classes present in the batch; memory rows: full."""

    def step(self, x, y):
        n = x.shape[0]
        if self.memory.size:
            mem = self.memory.sample(n, ("x", "y"))
            out = self.model(torch.cat((x, mem["x"])))
            replayed = F.cross_entropy(out[n:], mem["y"])
        else:
            out, replayed = self.model(x), 0.0
        present = torch.zeros(out.shape[1], dtype=torch.bool)
        present[y] = True
        loss = F.cross_entropy(out[:n].masked_fill(~present, float("-inf")), y) + replayed
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.memory.add(x=x, y=y)


class SI(Naive):
    """Path integral of the unregularised gradient times each step's weight change."""

    def __init__(self, model, optimizer, **params):
        super().__init__(model, optimizer, **params)
        self.importance, self.anchor = None, None
        self._reset()

    def _reset(self):
        self.omega = [torch.zeros_like(p) for p in self.params]
        self.start = [p.detach().clone() for p in self.params]
        self.previous = [p.detach().clone() for p in self.params]

    def step(self, x, y):
        loss = F.cross_entropy(self.model(x), y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        grads = [p.grad for p in self.params]
        if self.importance is not None:
            grads = [g.clone() for g in grads]
            for p, o, a in zip(self.params, self.importance, self.anchor, strict=True):
                p.grad.add_(2 * self.c * o * (p.detach() - a))
        self.opt.step()
        for w, g, p, q in zip(self.omega, grads, self.params, self.previous, strict=True):
            w.sub_(g * (p.detach() - q))
            q.copy_(p.detach())

    def consolidate(self, x, y, generator):
        new = [w / ((p.detach() - s) ** 2 + self.xi)
               for w, p, s in zip(self.omega, self.params, self.start, strict=True)]
        self.importance = new if self.importance is None else [
            a + b for a, b in zip(self.importance, new, strict=True)]
        self.anchor = [p.detach().clone() for p in self.params]
        self._reset()


class MAS(Naive):
    """``loss + λ Σ Ω (θ − θ*)²`` with Ω the output sensitivity summed over experiences."""

    def __init__(self, model, optimizer, **params):
        super().__init__(model, optimizer, **params)
        self.importance, self.anchor = None, None

    def loss(self, x, y):
        loss = F.cross_entropy(self.model(x), y)
        if self.importance is not None:
            for p, o, a in zip(self.params, self.importance, self.anchor, strict=True):
                loss = loss + self.lambda_ * (o * (p - a) ** 2).sum()
        return loss

    def consolidate(self, x, y, generator):
        batches = subset_chunks(x, y, 256, self.samples, generator)
        new = output_sensitivity(self.model, (xb for xb, _, _ in batches))
        self.importance = new if self.importance is None else [
            a + b for a, b in zip(self.importance, new, strict=True)]
        self.anchor = [p.detach().clone() for p in self.params]


LOOPS = {"naive": Naive, "ewc": EWC, "online-ewc": OnlineEWC, "lwf": LwF, "replay": Replay,
         "der": DER, "derpp": DERPlusPlus, "agem": AGEM, "er-ace": ERACE, "si": SI, "mas": MAS}


def train_plain(strategy: str, model: nn.Module, optimizer: torch.optim.Optimizer,
                experiences: list[tuple[torch.Tensor, torch.Tensor]], batch_size: int,
                seed: int) -> float:
    """Train on each experience in turn (one epoch, shuffled like retain: one ``randperm`` from
    a generator seeded with ``seed``, each batch gathered with its slice of it); returns the
    seconds it took."""
    loop = LOOPS[strategy](model, optimizer, **PARAMS[strategy])
    generator = torch.Generator().manual_seed(seed)
    model.train()
    start = time.perf_counter()
    for x, y in experiences:
        perm = torch.randperm(x.shape[0], generator=generator)
        for i in range(0, x.shape[0], batch_size):
            idx = perm[i : i + batch_size]
            loop.step(x[idx], y[idx])
        loop.consolidate(x, y, generator)
    return time.perf_counter() - start
