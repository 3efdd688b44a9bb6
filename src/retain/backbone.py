"""Frozen pretrained backbones: features computed once per experience, then reused.

A frozen feature extractor gives the same features every time it sees a sample, so training
a head for several epochs, replaying memory samples and evaluating need not run it again:
:func:`cache_stream` runs it once per experience (batched, under ``torch.inference_mode``)
and hands back a stream of feature datasets. A learner whose model is the head alone then
trains, replays (its memory holds features, not images) and evaluates on them unchanged.
``benchmarks/feature_cache.py`` measures the saving against recomputing them.

>>> import torch
>>> from torch import nn
>>> from torch.utils.data import TensorDataset
>>> from retain.scenarios.experience import make_stream
>>> _ = torch.manual_seed(0)
>>> backbone = freeze(nn.Sequential(nn.Linear(6, 16), nn.ReLU()))
>>> data = TensorDataset(torch.randn(40, 6), torch.randint(0, 3, (40,)))
>>> stream = cache_stream(backbone, make_stream([(data, data)], "toy"))
>>> stream[0].train.tensors[0].shape, stream[0].test.tensors[0].shape
(torch.Size([40, 16]), torch.Size([40, 16]))
"""

from __future__ import annotations

import dataclasses
import importlib
import time
from collections.abc import Sequence

import torch
from torch import nn
from torch.utils.data import Dataset, TensorDataset

from retain.data import materialize
from retain.errors import RetainError
from retain.scenarios.experience import Experience, Stream


def freeze(module: nn.Module, trainable: Sequence[str] = ()) -> nn.Module:
    """``module`` with every parameter frozen except those whose name contains one of
    ``trainable`` (e.g. ``("norm",)``); in evaluation mode when nothing is left trainable, so
    dropout and batch-norm statistics stay fixed. Returns the module itself."""
    left = 0
    for name, p in module.named_parameters():
        keep = any(part in name for part in trainable)
        p.requires_grad_(keep)
        left += keep
    if not left:
        module.eval()
    return module


def adapt_first(backbone: nn.Module, head: nn.Module, data: Dataset, epochs: int = 1,
                batch_size: int = 64, lr: float = 1e-3, trainable: Sequence[str] = (),
                seed: int = 0) -> nn.Module:
    """First-session adaptation (APER, RanPAC): train ``backbone`` (only the parameters
    whose name contains one of ``trainable``, e.g. its LoRA adapters; every parameter when
    empty) with ``head`` on the first experience's ``data`` (Adam, cross-entropy), then freeze
    it and return it. Later experiences reach a closed-form head through the adapted, frozen
    features; ``head`` is discarded."""
    from retain.learner import Learner  # the learner sits beside this module in the core

    for name, p in backbone.named_parameters():
        p.requires_grad_(not trainable or any(part in name for part in trainable))
    if not any(p.requires_grad for p in backbone.parameters()):
        raise RetainError(f"no backbone parameter matches trainable={list(trainable)}")
    backbone.train()
    model = nn.Sequential(backbone, head)
    params = [p for p in model.parameters() if p.requires_grad]
    Learner(model, torch.optim.Adam(params, lr=lr), seed=seed).learn(
        data, epochs=epochs, batch_size=batch_size)
    return freeze(backbone)


def load_backbone(spec: str) -> nn.Module:
    """The frozen backbone a ``"module:attribute"`` reference names: an ``nn.Module``, or a
    callable returning one (``retain run --backbone my_models:encoder``)."""
    module, _, attr = spec.partition(":")
    if not module or not attr:
        raise RetainError(f"--backbone takes 'module:attribute', got {spec!r}")
    try:
        obj = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise RetainError(f"cannot load the backbone {spec!r}: {exc}") from None
    if not isinstance(obj, nn.Module) and callable(obj):
        obj = obj()
    if not isinstance(obj, nn.Module):
        raise RetainError(f"the backbone {spec!r} is a {type(obj).__name__}, not an nn.Module")
    return freeze(obj)


def is_frozen(module: nn.Module) -> bool:
    """True when no parameter of ``module`` requires a gradient."""
    return not any(p.requires_grad for p in module.parameters())


def features(backbone: nn.Module, dataset: Dataset, batch_size: int = 256,
             device: torch.device | str | None = None,
             autocast: torch.dtype | None = None) -> TensorDataset:
    """``dataset`` with each input replaced by ``backbone(input)``: one batched pass under
    ``torch.inference_mode``, features kept on the CPU in float32 (labels and task labels
    unchanged). The backbone must be frozen (:func:`freeze`): the features of a trainable
    one go stale. ``autocast=torch.bfloat16`` runs it under ``torch.autocast`` (a GPU's
    tensor cores; ``benchmarks/backbone_gpu.py`` measures it)."""
    if not is_frozen(backbone):
        raise RetainError("the backbone has trainable parameters: its features would change "
                          "while training; freeze it first (retain.backbone.freeze)")
    if batch_size < 1:
        raise RetainError(f"batch_size must be >= 1, got {batch_size}")
    if device is None:
        first = next(backbone.parameters(), None)
        device = first.device if first is not None else torch.device("cpu")
    columns = materialize(dataset, batch_size)
    if len(columns) < 2:
        raise RetainError("every sample must be an (input, label) pair")
    device = torch.device(device)
    was_training = backbone.training
    backbone.eval()
    try:
        with torch.inference_mode(), torch.autocast(device.type, dtype=autocast,
                                                    enabled=autocast is not None):
            parts = [backbone(columns[0][i:i + batch_size].to(device)).flatten(1).float().cpu()
                     for i in range(0, columns[0].shape[0], batch_size)]
    finally:
        backbone.train(was_training)
    if not parts:
        raise RetainError("the dataset is empty: no features to compute")
    # inference tensors cannot be saved for backward; a plain copy can train a head
    return TensorDataset(torch.cat(parts).clone(), *columns[1:3])


def cache_stream(backbone: nn.Module, stream: Stream | Sequence[Experience],
                 batch_size: int = 256, device: torch.device | str | None = None,
                 autocast: torch.dtype | None = None) -> Stream:
    """The stream with every train and test set replaced by its :func:`features`; how long
    it took is in ``info["feature_seconds"]`` (per experience)."""
    experiences, seconds = [], []
    for e in stream:
        start = time.perf_counter()
        train = features(backbone, e.train, batch_size, device, autocast)
        test = None if e.test is None else features(backbone, e.test, batch_size, device,
                                                    autocast)
        seconds.append(time.perf_counter() - start)
        experiences.append(dataclasses.replace(e, train=train, test=test))
    base = stream if isinstance(stream, Stream) else Stream(list(stream))
    return Stream(experiences, name=base.name, n_classes=base.n_classes,
                  task_classes=base.task_classes,
                  info={**base.info, "feature_seconds": seconds})

