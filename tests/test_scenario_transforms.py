import pytest
import torch
from torch.utils.data import TensorDataset

from retain import RetainError, scenarios
from retain.scenarios import rotate


def _images(n=6, size=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, size, size, generator=g), torch.arange(n) % 3


def test_rotating_by_90_degrees_moves_pixels_exactly():
    x, _ = _images()
    for interpolation in ("nearest", "bilinear"):
        out = rotate(x, 90.0, interpolation=interpolation)
        assert any(torch.allclose(out, torch.rot90(x, k, dims=(2, 3)), atol=1e-5)
                   for k in (1, -1))
        torch.testing.assert_close(rotate(x, 0.0, interpolation=interpolation), x)


def test_nearest_keeps_pixel_values_and_bilinear_blends_them():
    x, _ = _images()
    values = set(x.flatten().tolist()) | {0.0}  # zero fill outside the image
    nearest = rotate(x, 37.0, interpolation="nearest")
    assert set(nearest.flatten().tolist()) <= values
    bilinear = rotate(x, 37.0)
    assert not set(bilinear.flatten().tolist()) <= values


def test_rotated_stream_draws_one_angle_per_experience_and_applies_it_to_train_and_test():
    x, y = _images()
    stream = scenarios.rotated(TensorDataset(x, y), TensorDataset(x, y), n_experiences=3,
                               seed=4, interpolation="nearest")
    angles = stream.info["angles"]
    assert len(angles) == 3 and all(0 <= a < 180 for a in angles)
    assert stream.info["interpolation"] == "nearest"
    for experience, angle in zip(stream, angles, strict=True):
        expected = rotate(x, angle, interpolation="nearest")
        assert torch.equal(experience.train.tensors[0], expected)
        assert torch.equal(experience.test.tensors[0], expected)
    again = scenarios.rotated(TensorDataset(x, y), TensorDataset(x, y), n_experiences=3, seed=4)
    assert again.info["angles"] == angles  # the seed decides the angles


def test_permuted_stream_applies_one_permutation_per_experience():
    x, y = _images()
    stream = scenarios.permuted(TensorDataset(x, y), TensorDataset(x, y), n_experiences=2)
    first, second = (e.train.tensors[0].flatten(1) for e in stream)
    assert not torch.equal(first, second)
    flat = x.flatten(1)
    for permuted in (first, second):  # one reordering of the pixels, the same for every row
        # row 0's values are distinct: where each of its pixels went gives the permutation
        perm = (permuted[0].unsqueeze(1) == flat[0].unsqueeze(0)).int().argmax(1)
        assert torch.equal(permuted, flat[:, perm])
    assert torch.equal(stream[0].test.tensors[0].flatten(1), first)


def test_bad_interpolation_and_non_images_are_refused():
    x, y = _images()
    with pytest.raises(RetainError, match="interpolation"):
        scenarios.rotated(TensorDataset(x, y), TensorDataset(x, y), interpolation="cubic")
    with pytest.raises(RetainError, match="image inputs"):
        scenarios.rotated(TensorDataset(x.flatten(1), y), TensorDataset(x.flatten(1), y))
