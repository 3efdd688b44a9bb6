"""Pretrained models that keep learning: LoRA adapters through ``peft`` (plain ``nn.Module``s
and HuggingFace ``transformers`` models), checkpoints that hold the adapters and a reference
to the base weights (never a copy of them), and continual fine-tuning of causal language
models. Needs the ``pretrained`` extra (``pip install 'retain[pretrained]'``).

The closed-form heads (NCM, SLDA, RanPAC) and frozen-feature caching need no extra: they are
core (:mod:`retain.strategies`, :mod:`retain.backbone`). docs/pretrained.md shows both.
"""
