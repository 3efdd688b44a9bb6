"""Domain-incremental streams made by transforming the inputs: permuted and rotated."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from retain.data import LazyTensorDataset, materialize
from retain.errors import RetainError
from retain.scenarios.experience import Experience, Stream


def _lazy(tensors, transform) -> LazyTensorDataset:
    x, *rest = tensors
    return LazyTensorDataset(lambda: (transform(x), *rest), x.shape[0])


def permuted(train: Dataset, test: Dataset, n_experiences: int = 10, seed: int = 0) -> Stream:
    """Each experience applies its own fixed random permutation to the input features
    (Permuted MNIST, Goodfellow et al. 2013). Same labels everywhere: domain-incremental.
    Transformed copies are built when an experience is used, not all at once."""
    _check_n(n_experiences)
    train_t, test_t = materialize(train), materialize(test)
    g = torch.Generator().manual_seed(seed)
    n_features = train_t[0][0].numel()
    experiences = []
    for i in range(n_experiences):
        perm = torch.randperm(n_features, generator=g)

        def transform(x, perm=perm):
            return x.reshape(x.shape[0], -1)[:, perm].reshape(x.shape)

        experiences.append(Experience(_lazy(train_t, transform), _lazy(test_t, transform),
                                      index=i, name=f"permutation {i}"))
    return Stream(experiences, name="permuted", n_classes=_n_classes(train_t))


def rotated(
    train: Dataset, test: Dataset, n_experiences: int = 10, seed: int = 0,
    angles: list[float] | None = None, interpolation: str = "bilinear",
) -> Stream:
    """Each experience rotates the images by its own angle (degrees; default: drawn uniformly
    from [0, 180) per experience with ``seed``, as in Buzzega et al. 2020's Rotated MNIST).
    Inputs must be images ``[N, C, H, W]``. ``interpolation="nearest"`` keeps every pixel
    value as it was (what torchvision's PIL ``rotate`` does by default, so mammoth's Rotated
    MNIST); ``"bilinear"`` smooths the strokes."""
    _check_n(n_experiences)
    _check_interpolation(interpolation)
    train_t, test_t = materialize(train), materialize(test)
    if train_t[0].dim() != 4:
        raise RetainError(
            f"rotated needs image inputs [N, C, H, W], got shape {tuple(train_t[0].shape)}"
        )
    if angles is None:
        g = torch.Generator().manual_seed(seed)
        angles = (torch.rand(n_experiences, generator=g) * 180).tolist()
    if len(angles) != n_experiences:
        raise RetainError(f"got {len(angles)} angles for {n_experiences} experiences")
    experiences = []
    for i, angle in enumerate(angles):
        def transform(x, angle=angle):
            return rotate(x, angle, interpolation=interpolation)

        experiences.append(Experience(_lazy(train_t, transform), _lazy(test_t, transform),
                                      index=i, name=f"rotation {angle:.1f}°"))
    return Stream(experiences, name="rotated", n_classes=_n_classes(train_t),
                  info={"angles": list(angles), "interpolation": interpolation})


def rotate(images: torch.Tensor, degrees: float, chunk: int = 8192,
           interpolation: str = "bilinear") -> torch.Tensor:
    """Rotate a batch of images about their centre (zero fill; ``interpolation`` is
    ``"bilinear"`` or ``"nearest"``)."""
    _check_interpolation(interpolation)
    theta = math.radians(degrees)
    c, s = math.cos(theta), math.sin(theta)
    matrix = torch.tensor([[c, -s, 0.0], [s, c, 0.0]], dtype=images.dtype)
    out = torch.empty_like(images)
    for start in range(0, images.shape[0], chunk):
        part = images[start : start + chunk]
        grid = F.affine_grid(matrix.expand(part.shape[0], 2, 3), list(part.shape),
                             align_corners=False)
        out[start : start + chunk] = F.grid_sample(part, grid, mode=interpolation,
                                                   align_corners=False)
    return out


def _check_interpolation(interpolation: str) -> None:
    if interpolation not in ("bilinear", "nearest"):
        raise RetainError(
            f"interpolation must be 'bilinear' or 'nearest', got {interpolation!r}")


def _check_n(n: int) -> None:
    if n < 1:
        raise RetainError(f"n_experiences must be >= 1, got {n}")


def _n_classes(tensors) -> int:
    return int(tensors[1].max()) + 1
