"""Recipes that rebuild a learner's parts (model, loss, optimizer, scheduler, strategies) from
names and arguments, so a checkpoint can be loaded without the code that made it.

A recipe is ``{"name": ..., "args": {...}}``. Names are looked up only in fixed namespaces
(:data:`retain.models.MODELS`, ``torch.nn``, ``torch.optim``, ``torch.optim.lr_scheduler``,
:data:`retain.optim.SCHEDULERS`, :data:`retain.strategies.STRATEGIES`): a manifest can never
make us import arbitrary code.
Arguments are read back from attributes named like the constructor's parameters (the
scikit-learn convention), or recorded when :func:`recorded_model` builds the model.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import torch
from torch import nn

from retain.errors import RetainError
from retain.growth import GROWN_ATTR, grow_layer
from retain.strategies import Strategy, make_strategy

if TYPE_CHECKING:
    from retain.strategies.contract import DriverView

L = TypeVar("L")
_SPEC_ATTR = "retain_spec"  # set on models built by recorded_model
_SCHEDULER_SKIP = ("optimizer", "last_epoch", "verbose")  # restored by load_state_dict


def constructor_args(obj: Any, strict: bool, skip: tuple[str, ...] = ()
                     ) -> tuple[dict[str, Any], list[str]]:
    """``(args, missing)``: constructor arguments kept as same-named attributes, and the
    parameters that are not kept (all of them when ``strict``, else only those without a
    default)."""
    args, missing = {}, []
    for name, p in inspect.signature(type(obj).__init__).parameters.items():
        if name == "self" or name in skip or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        value = getattr(obj, name, p.empty)
        if value is not p.empty and not isinstance(value, nn.Module | Callable):
            args[name] = value
        elif strict or p.default is p.empty:
            missing.append(name)
    return args, missing


def _qualname(obj: Any) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


# -- model -----------------------------------------------------------------------------------
def recorded_model(name: str, **args: Any) -> nn.Module:
    """A built-in model from :data:`retain.models.MODELS` that remembers how it was built."""
    from retain.models import MODELS

    if name not in MODELS:
        raise RetainError(f"unknown model {name!r}; choose one of {', '.join(sorted(MODELS))}")
    try:
        model = MODELS[name](**args)
    except TypeError as exc:
        raise RetainError(f"bad arguments for model {name!r}: {exc}") from None
    kept, missing = constructor_args(model, strict=True)
    setattr(model, _SPEC_ATTR, {"name": name, "args": dict(args) if missing else kept})
    return model


def model_spec(model: nn.Module) -> dict[str, Any]:
    """``{"name", "args"}`` for a built-in model, else ``{"name": None, "class": ...}``."""
    from retain.models import MODELS

    grown = {"grown": dict(model.retain_grown)} if hasattr(model, GROWN_ATTR) else {}
    if hasattr(model, _SPEC_ATTR):
        return {**getattr(model, _SPEC_ATTR), **grown}
    name = next((n for n, cls in MODELS.items() if type(model) is cls), None)
    if name is not None:
        args, missing = constructor_args(model, strict=True)
        if not missing:
            return {"name": name, "args": args, **grown}
    return {"name": None, "class": _qualname(model), **grown}


def rebuild_model(spec: dict[str, Any]) -> nn.Module:
    """The model of a recipe; one grown for new classes (``"grown"``, checkpoint format 2)
    gets its grown output layer back."""
    if spec.get("name") is None:
        raise RetainError(
            f"the checkpoint holds a custom model ({spec.get('class')}); build one the same way "
            "and pass it: Learner.load(path, model=my_model)"
            + (f" (its output layer {spec['grown']['layer']!r} grown to "
               f"{spec['grown']['out_features']} units: grow yours with "
               "retain.growth.grow_layer)" if spec.get("grown") else ""))
    model = recorded_model(spec["name"], **spec["args"])
    if spec.get("grown"):
        grow_layer(model, spec["grown"])
    return model


# -- loss ------------------------------------------------------------------------------------
def loss_spec(loss: nn.Module) -> dict[str, Any]:
    if getattr(nn, type(loss).__name__, None) is type(loss):
        args, missing = constructor_args(loss, strict=False)
        if not missing:
            return {"name": type(loss).__name__, "args": args}
    return {"name": None, "class": _qualname(loss)}


def rebuild_loss(spec: dict[str, Any], loss: nn.Module | None) -> nn.Module:
    if loss is not None:
        return loss
    if spec.get("name") is None:
        raise RetainError(f"the checkpoint was trained with a custom loss ({spec.get('class')}); "
                          "pass it: Learner.load(path, loss=my_loss)")
    return _lookup(nn, spec["name"], nn.Module, "loss")(**spec["args"])


# -- optimizer and scheduler -----------------------------------------------------------------
def optimizer_spec(optimizer: torch.optim.Optimizer, model: nn.Module) -> dict[str, Any]:
    """Class, hyper-parameters and the parameter names of each group (to rebuild the groups)."""
    cls = type(optimizer)
    if getattr(torch.optim, cls.__name__, None) is not cls:
        raise RetainError(f"cannot save a learner with optimizer {_qualname(optimizer)}: only "
                          "torch.optim optimizers can be rebuilt from a checkpoint")
    names = {id(p): n for n, p in model.named_parameters()}
    try:
        groups = [[names[id(p)] for p in g["params"]] for g in optimizer.param_groups]
    except KeyError:
        raise RetainError("the optimizer updates a tensor that is not a parameter of the model; "
                          "build it from model.parameters()") from None
    accepted = inspect.signature(cls.__init__).parameters
    args = {k: v for k, v in optimizer.defaults.items() if k in accepted}
    return {"name": cls.__name__, "args": args, "groups": groups}


def rebuild_optimizer(spec: dict[str, Any], model: nn.Module) -> torch.optim.Optimizer:
    cls = _lookup(torch.optim, spec["name"], torch.optim.Optimizer, "optimizer")
    params = dict(model.named_parameters())
    missing = [n for g in spec["groups"] for n in g if n not in params]
    if missing:
        raise RetainError(f"the checkpoint's optimizer updates parameters the model lacks: "
                          f"{', '.join(missing[:5])}")
    return cls([{"params": [params[n] for n in g]} for g in spec["groups"]], **spec["args"])


def scheduler_spec(scheduler: Any) -> dict[str, Any] | None:
    if scheduler is None:
        return None
    if _scheduler_class(type(scheduler).__name__) is not type(scheduler):
        raise RetainError(f"cannot save a learner with scheduler {_qualname(scheduler)}: only "
                          "torch.optim.lr_scheduler schedulers and retain.optim.HalfLifeLR "
                          "can be rebuilt from a checkpoint")
    args, missing = constructor_args(scheduler, strict=False, skip=_SCHEDULER_SKIP)
    if missing:
        raise RetainError(
            f"cannot save a learner with a {type(scheduler).__name__} scheduler: its argument "
            f"{missing[0]!r} is code or is not kept, so it cannot be rebuilt. Use a scheduler "
            "with plain arguments (StepLR, ExponentialLR, CosineAnnealingLR, ...)")
    return {"name": type(scheduler).__name__, "args": args}


def rebuild_scheduler(spec: dict[str, Any] | None, optimizer: torch.optim.Optimizer) -> Any:
    if spec is None:
        return None
    cls = _scheduler_class(spec["name"])
    if cls is None:
        raise RetainError(f"the checkpoint names an unknown scheduler {spec['name']!r} (looked "
                          "in torch.optim.lr_scheduler and retain.optim.SCHEDULERS)")
    return cls(optimizer, **spec["args"])


def _scheduler_class(name: str) -> type | None:
    from retain.optim import SCHEDULERS

    cls = SCHEDULERS.get(name, getattr(torch.optim.lr_scheduler, name, None))
    base = torch.optim.lr_scheduler.LRScheduler
    return cls if isinstance(cls, type) and issubclass(cls, base) else None


# -- the learner -----------------------------------------------------------------------------
def learner_spec(learner: DriverView) -> dict[str, Any]:
    """Everything needed to build an equivalent, untrained learner."""
    return {
        "model": model_spec(learner.model),
        "loss": loss_spec(learner.loss_fn),
        "optimizer": optimizer_spec(learner.optimizer, learner.model),
        "scheduler": scheduler_spec(learner.scheduler),
        "strategies": [{"name": s.name, "hyperparameters": dict(s.hyperparameters)}
                       for s in learner.strategies],
        "learner": {"seed": learner.seed, "scheduler_interval": learner.scheduler_interval,
                    "eval_batch_size": learner.eval_batch_size, "task_type": learner.task_type},
    }


def rebuild_learner(spec: dict[str, Any], learner_class: type[L], model: nn.Module | None = None,
                    loss: nn.Module | None = None, device: torch.device | str | None = None
                    ) -> L:
    """A ``learner_class`` (:class:`retain.Learner` or a subclass) built from
    :func:`learner_spec`'s recipe (weights and state not loaded)."""
    model = model if model is not None else rebuild_model(spec["model"])
    if device is not None:
        model = model.to(device)
    optimizer = rebuild_optimizer(spec["optimizer"], model)
    strategies: list[Strategy] = [make_strategy(s["name"], **s["hyperparameters"])
                                  for s in spec["strategies"]]
    return learner_class(model, optimizer, loss=rebuild_loss(spec["loss"], loss),
                   strategies=strategies,
                   scheduler=rebuild_scheduler(spec["scheduler"], optimizer),
                   device=device, **spec["learner"])


def _lookup(namespace: Any, name: str, base: type, what: str) -> type:
    cls = getattr(namespace, name, None)
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise RetainError(f"the checkpoint names an unknown {what} {name!r} "
                          f"(looked in {namespace.__name__})")
    return cls
