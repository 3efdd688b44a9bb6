"""``python -m retain ...``, so that ``torchrun --nproc-per-node N -m retain run ...`` starts
the command on every rank (docs/distributed.md)."""

from retain.cli import main

main()
