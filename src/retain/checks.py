"""The learner's checks of what it is given: arguments, data, a state to load, other ranks.

Each check raises a :class:`~retain.errors.RetainError` that names the problem; none runs per
step (data is checked once per experience, a state before anything of it is loaded).

>>> check_inputs(torch.zeros(2, 3), torch.zeros(3))
Traceback (most recent call last):
    ...
retain.errors.RetainError: 2 inputs but 3 labels
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from retain.errors import RetainError
from retain.strategies.base import Strategy

if TYPE_CHECKING:
    from retain.strategies.contract import DriverView

SCHEDULER_INTERVALS = ("step", "epoch", "experience")
#: the counters a saved learner section must hold
LEARNER_KEYS = ("experiences_seen", "samples_seen", "generator")


def check_arguments(model: Any, optimizer: Any, scheduler_interval: str) -> None:
    """The learner's constructor arguments."""
    if not isinstance(model, nn.Module):
        raise RetainError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise RetainError(
            f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
    if scheduler_interval not in SCHEDULER_INTERVALS:
        raise RetainError(
            f"scheduler_interval must be 'step', 'epoch' or 'experience', "
            f"got {scheduler_interval!r}")


def check_strategies(strategies: Sequence[Any], distributed: bool) -> None:
    """Strategies only, and (with several ranks) only those that keep their state identical
    across ranks."""
    for s in strategies:
        if not isinstance(s, Strategy):
            raise RetainError(f"{s!r} is not a retain Strategy")
    refused = [type(s).__name__ for s in strategies if not getattr(s, "distributed", False)]
    if distributed and refused:
        raise RetainError(
            f"{', '.join(refused)} cannot train distributed: its state is not kept identical "
            "across ranks (a strategy declares `distributed = True` once it is); run it in "
            "one process")


def check_single_owners(strategies: Sequence[Strategy]) -> None:
    """At most one strategy replaces the learner's criterion, and one its classifier."""
    for hook, what in (("criterion", "criterion"), ("classify", "classifier")):
        owners = [s for s in strategies if s.overrides(hook)]
        if len(owners) > 1:
            raise RetainError(
                f"{' and '.join(type(s).__name__ for s in owners)} each replace the "
                f"learner's {what}; at most one strategy of a learner may")


# -- data ------------------------------------------------------------------------------------
def check_inputs(x: torch.Tensor, y: torch.Tensor) -> None:
    """As many labels as inputs, at least one of each, and finite inputs."""
    if x.shape[0] == 0:
        raise RetainError("the data is empty: nothing to learn")
    if x.shape[0] != y.shape[0]:
        raise RetainError(f"{x.shape[0]} inputs but {y.shape[0]} labels")
    if not all_finite(x):
        bad = int((~torch.isfinite(x)).reshape(x.shape[0], -1).any(1).sum())
        raise RetainError(f"inputs contain NaN or inf in {bad} of {x.shape[0]} samples")


def check_targets(y: torch.Tensor, out: torch.Tensor, task_type: str, t: torch.Tensor | None,
                  task_mask: torch.Tensor | None) -> None:
    """Labels (or targets) and task labels that fit ``out``, the model's outputs on the first
    rows."""
    if task_type == "classification":
        if y.is_floating_point() or y.dtype == torch.bool:
            raise RetainError(f"class labels must be integers, got dtype {y.dtype}")
        if out.dim() != 2:
            raise RetainError(
                f"a classifier must output [batch, classes], got shape {tuple(out.shape)}")
        lo, hi = (int(v) for v in torch.aminmax(y))
        if lo < 0 or hi >= out.shape[1]:
            raise RetainError(
                f"labels must be in [0, {out.shape[1] - 1}] for a model with "
                f"{out.shape[1]} outputs; got labels in [{lo}, {hi}]")
    else:
        if not all_finite(y):
            raise RetainError("targets contain NaN or inf")
        if y[:2].numel() != out.numel():
            raise RetainError(
                f"targets of shape {tuple(y.shape[1:])} do not match model outputs of "
                f"shape {tuple(out.shape[1:])}")
    if t is not None and task_mask is not None:
        if int(t.min()) < 0 or int(t.max()) >= task_mask.shape[0]:
            raise RetainError(f"task labels must be in [0, {task_mask.shape[0] - 1}]")


def probe(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The model's outputs on ``x`` in eval mode, without gradients; a model that cannot take
    ``x`` is a :class:`RetainError` naming the input shape."""
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            return model(x)
    except RetainError:
        raise
    except (RuntimeError, ValueError, IndexError) as exc:
        first = str(exc).splitlines()[0]
        raise RetainError(
            f"inputs of shape {tuple(x.shape[1:])} do not fit the model: {first}") from None
    finally:
        model.train(was_training)


def check_finite(x: torch.Tensor) -> None:
    """Inputs without NaN or inf."""
    if not all_finite(x):
        raise RetainError("inputs contain NaN or inf")


def all_finite(x: torch.Tensor) -> bool:
    """No NaN or inf in ``x``. A sum is NaN or inf whenever an element is, and costs one pass
    without the element-wise mask ``isfinite`` allocates; only a non-finite sum (a bad value,
    or a sum that overflowed) needs the element-wise check."""
    if not x.is_floating_point():
        return True
    return bool(torch.isfinite(x.sum())) or bool(torch.isfinite(x).all())


# -- a state to load -------------------------------------------------------------------------
def check_state(state: Mapping[str, Any], model: nn.Module, optimizer: torch.optim.Optimizer,
                strategies: Sequence[Strategy]) -> None:
    """Everything :meth:`retain.Learner.load_state_dict` would load, checked before any of it
    is (as ``torch.optim.Optimizer.load_state_dict`` does): a failed load changes nothing."""
    missing = [k for k in ("model", "optimizer", "strategies", "learner") if k not in state]
    if missing:
        raise RetainError(f"the learner state lacks {missing}")
    names = [s["name"] for s in state["strategies"]]
    mine = [s.name for s in strategies]
    if names != mine:
        raise RetainError(f"checkpoint strategies {names} differ from this learner's {mine}")
    for strategy, saved in zip(strategies, state["strategies"], strict=True):
        strategy.check_state(saved["state"])
    check_model(model, state["model"], "checkpoint does not fit this model")
    _check_optimizer_state(state["optimizer"], optimizer)
    lacking = [k for k in LEARNER_KEYS if k not in state["learner"]]
    if lacking:
        raise RetainError(f"the learner section of the state lacks {lacking}")


def check_model(model: nn.Module, weights: Mapping[str, torch.Tensor],
                what: str = "the model does not fit the checkpoint") -> None:
    """Raise a :class:`RetainError` listing every name and shape where ``model`` differs from
    the saved weights."""
    mine = model.state_dict()
    problems = [f"{k} is missing from the model" for k in weights if k not in mine]
    problems += [f"{k} is not in the checkpoint" for k in mine if k not in weights]
    problems += [f"{k} has shape {tuple(mine[k].shape)} in the model but "
                 f"{tuple(weights[k].shape)} in the checkpoint"
                 for k in weights if k in mine and mine[k].shape != weights[k].shape]
    if problems:
        raise RetainError(f"{what}: " + "; ".join(problems))


def _check_optimizer_state(saved: Mapping[str, Any], optimizer: torch.optim.Optimizer) -> None:
    groups = saved.get("param_groups")
    if groups is None or "state" not in saved:
        raise RetainError("the optimizer state lacks 'state' or 'param_groups'")
    mine = optimizer.param_groups
    if len(groups) != len(mine):
        raise RetainError(f"the saved optimizer has {len(groups)} parameter groups, this "
                          f"learner's {len(mine)}")
    sizes = [(len(g["params"]), len(m["params"])) for g, m in zip(groups, mine, strict=True)]
    if any(a != b for a, b in sizes):
        raise RetainError(f"the saved optimizer's groups hold {[a for a, _ in sizes]} "
                          f"parameters, this learner's {[b for _, b in sizes]}")


# -- several ranks ---------------------------------------------------------------------------
def agreed_settings(learner: DriverView) -> dict[str, Any]:
    """What every rank must agree on: strategies and their hyper-parameters, optimizer
    settings, model shape."""
    groups = [{k: v for k, v in g.items() if k != "params"}
              for g in learner.optimizer.param_groups]
    return {"strategies": [[s.name, dict(s.hyperparameters)] for s in learner.strategies],
            "optimizer": [type(learner.optimizer).__name__, groups],
            "model": [[n, list(p.shape)] for n, p in learner.model.named_parameters()],
            "loss": type(learner.loss_fn).__name__, "task_type": learner.task_type}


def check_world_size(n: int, ranks: int) -> None:
    """Every rank needs at least one of the ``n`` samples."""
    if n < ranks:
        raise RetainError(
            f"the world has {ranks} ranks but the data only {n} samples: every "
            f"rank needs at least one; start fewer processes (--nproc-per-node)")


def agree_on_experience(learner: DriverView, n: int, what: dict[str, Any]) -> None:
    """Once per experience, on every rank: data big enough, ranks agreeing on the settings
    and on ``what`` (the experience's size, epochs, ...), shuffles identical."""
    check_world_size(n, learner.world.size)
    learner.world.agree({**agreed_settings(learner), **what})
    learner.world.sync_generator(learner.generator)
