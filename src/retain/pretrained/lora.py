"""LoRA adapters through ``peft`` on any ``nn.Module`` or HuggingFace model, and the hash of
the frozen base weights an adapter checkpoint refers to."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch
from torch import nn

from retain.errors import RetainError
from retain.extras import require

#: what peft inserts into the names of the layers it wraps; removed to name the base weights
_PEFT_PARTS = ("base_model.model.", ".base_layer", ".original_module")


def add_lora(model: nn.Module, target_modules: Sequence[str], r: int = 8, alpha: int = 16,
             dropout: float = 0.0, trainable_modules: Sequence[str] = (),
             seed: int = 0) -> nn.Module:
    """``model`` with LoRA adapters of rank ``r`` on the layers named in ``target_modules``
    (peft's matching: a name or the end of one, e.g. ``["query", "value"]``); everything else
    is frozen except ``trainable_modules`` (e.g. a new classifier), which stay trainable.
    Strategies (Replay, EWC, MAS, LwF, DER++) then act on the trainable parameters only, so
    importances and anchors take a fraction of the model's memory. ``seed`` draws the
    adapters' initial weights.

    >>> import torch
    >>> from torch import nn
    >>> _ = torch.manual_seed(0)
    >>> net = add_lora(nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3)), ["0"],
    ...                r=2, trainable_modules=["2"])
    >>> for name in sorted(n for n, p in net.named_parameters() if p.requires_grad):
    ...     print(name)
    base_model.model.0.lora_A.default.weight
    base_model.model.0.lora_B.default.weight
    base_model.model.2.modules_to_save.default.bias
    base_model.model.2.modules_to_save.default.weight
    """
    peft = require("peft", "pretrained")
    if r < 1:
        raise RetainError(f"LoRA rank r must be >= 1, got {r}")
    config = peft.LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout,
                             target_modules=list(target_modules),
                             modules_to_save=list(trainable_modules) or None)
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        return peft.get_peft_model(model, config)
    except ValueError as exc:
        names = [n for n, _ in model.named_modules() if n][:12]
        raise RetainError(f"LoRA could not wrap {list(target_modules)}: {exc}; the model's "
                          f"modules include {names}") from None
    finally:
        torch.random.set_rng_state(state)


def base_name(name: str) -> str:
    """A parameter's name in the bare base model (peft's wrapping removed)."""
    for part in _PEFT_PARTS:
        name = name.replace(part, "")
    return name


def frozen_weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """The parameters that do not train, by their base-model name: what an adapter
    checkpoint does not copy."""
    return {base_name(n): p for n, p in model.named_parameters() if not p.requires_grad}


def base_hash(model: nn.Module) -> str:
    """``sha256:...`` over the names, shapes, dtypes and bytes of the frozen parameters (in
    name order). The same base gives the same hash whether peft wrapped it or not, as long
    as the same parameters are frozen."""
    digest = hashlib.sha256()
    for name, p in sorted(frozen_weights(model).items()):
        t = p.detach().cpu().contiguous()
        digest.update(f"{name}:{tuple(t.shape)}:{t.dtype};".encode())
        digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return "sha256:" + digest.hexdigest()


class Logits(nn.Module):
    """A HuggingFace model as a function ``input_ids -> logits`` (a retain learner's model)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids).logits
