"""The closed-form Fisher for nn.Linear layers against the torch.func (vmap) reference, and the
fallback to torch.func for models it does not cover."""

from contextlib import nullcontext
from unittest import mock

import pytest
import torch
from torch import nn

from retain import importance
from retain.errors import RetainError
from retain.importance import _fisher_vmap, fisher_diagonal

TASK_MASK = torch.tensor([[True, True, False, False], [False, False, True, True]])


def _mask(fill):
    def output_map(out, task):
        return out if task is None else out.masked_fill(~TASK_MASK[task], fill)
    return output_map


def _mlp(out=4):
    return nn.Sequential(nn.Flatten(), nn.Linear(6, 7), nn.Tanh(), nn.Linear(7, 5), nn.ReLU(),
                         nn.Linear(5, out))


def _data(n=23, out=4, task_type="classification"):
    x = torch.randn(n, 2, 3)
    y = torch.randint(0, out, (n,)) if task_type == "classification" else torch.randn(n, out)
    t = torch.randint(0, 2, (n,))
    return x, y, t


def _batches(x, y, t, size=10):
    return [(x[i : i + size], y[i : i + size], None if t is None else t[i : i + size])
            for i in range(0, len(x), size)]


def _both(model, batches, seed=0, closed_form_only=False, **kwargs):
    """(fisher_diagonal, the torch.func reference); with ``closed_form_only`` the first must
    not touch the torch.func path."""
    ref = _fisher_vmap(model, batches, generator=torch.Generator().manual_seed(seed), **kwargs)
    with mock.patch.object(importance, "_accumulate", side_effect=AssertionError(
            "the torch.func fallback ran")) if closed_form_only else nullcontext():
        fast = fisher_diagonal(model, batches, generator=torch.Generator().manual_seed(seed),
                               **kwargs)
    return fast, ref


def _assert_close(fast, ref):
    assert len(fast) == len(ref)
    for a, b in zip(fast, ref, strict=True):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-7)


@pytest.fixture
def no_vmap(monkeypatch):
    """Fail if the torch.func path runs: the closed form must cover the model on its own."""
    def forbidden(*args, **kwargs):
        raise AssertionError("the torch.func fallback ran")
    monkeypatch.setattr(importance, "_accumulate", forbidden)


CASES = [("exact", "classification", nn.CrossEntropyLoss()),
         ("sampled", "classification", nn.CrossEntropyLoss()),
         ("empirical", "classification", nn.CrossEntropyLoss()),
         ("weighted-empirical", "classification", nn.CrossEntropyLoss()),
         ("exact", "regression", nn.MSELoss()),
         ("empirical", "regression", nn.MSELoss())]


@pytest.mark.parametrize("masked", [False, True], ids=["plain", "masked"])
@pytest.mark.parametrize(("kind", "task_type", "loss_fn"), CASES,
                         ids=[f"{k}-{t}" for k, t, _ in CASES])
def test_closed_form_matches_vmap(kind, task_type, loss_fn, masked):
    model = _mlp()
    x, y, t = _data(task_type=task_type)
    kwargs = dict(kind=kind, task_type=task_type, loss_fn=loss_fn,
                  output_map=_mask(-1e9) if masked else None)
    fast, ref = _both(model, _batches(x, y, t if masked else None), seed=3,
                      closed_form_only=True, **kwargs)
    _assert_close(fast, ref)
    assert all(torch.isfinite(f).all() and (f >= 0).all() for f in fast)


def test_weighted_empirical_fisher_weights_each_squared_gradient_by_p_y(no_vmap):
    """mammoth's online-EWC estimate: p(y|x)·(∂ log p(y|x)/∂θ)², by a loop over samples."""
    model = _mlp(3)
    x, y, _ = _data(n=9, out=3)
    expected = [torch.zeros_like(p) for p in model.parameters()]
    for xi, yi in zip(x, y, strict=True):
        model.zero_grad()
        log_p = torch.log_softmax(model(xi[None]), dim=1)[0, yi]
        log_p.backward()
        for e, p in zip(expected, model.parameters(), strict=True):
            e += log_p.exp().detach() * p.grad**2 / len(x)
    got = fisher_diagonal(model, [(x, y, None)], kind="weighted-empirical",
                          loss_fn=nn.CrossEntropyLoss())
    _assert_close(got, expected)
    plain = fisher_diagonal(model, [(x, y, None)], kind="empirical",
                            loss_fn=nn.CrossEntropyLoss())
    assert all((g <= p + 1e-7).all() for g, p in zip(got, plain, strict=True))  # p(y|x) <= 1
    with pytest.raises(RetainError, match="classification only"):
        fisher_diagonal(model, [(x, y.float(), None)], kind="weighted-empirical",
                        task_type="regression", loss_fn=nn.MSELoss())


def test_closed_form_matches_per_sample_loop_for_exact_fisher(no_vmap):
    model = _mlp(3)
    x, y, _ = _data(n=9, out=3)
    fast = fisher_diagonal(model, [(x, y, None)], kind="exact")
    params = list(model.parameters())
    slow = [torch.zeros_like(p) for p in params]
    for xi in x:
        log_p = torch.log_softmax(model(xi.unsqueeze(0)), dim=1)[0]
        for c in range(3):
            grads = torch.autograd.grad(log_p[c], params, retain_graph=True)
            for s, g in zip(slow, grads, strict=True):
                s += log_p[c].detach().exp() * g.pow(2) / len(x)
    _assert_close(fast, slow)


def test_minus_inf_mask_gives_zero_weight_not_nan(no_vmap):
    model = _mlp()
    x, y, t = _data()
    for kind in ("exact", "sampled"):
        finite = fisher_diagonal(model, _batches(x, y, t), kind=kind, output_map=_mask(-1e9),
                                 generator=torch.Generator().manual_seed(1))
        infinite = fisher_diagonal(model, _batches(x, y, t), kind=kind,
                                   output_map=_mask(float("-inf")),
                                   generator=torch.Generator().manual_seed(1))
        assert all(torch.isfinite(f).all() for f in infinite)
        _assert_close(infinite, finite)


def test_in_place_activation_frozen_layer_and_no_bias():
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(inplace=True), nn.Linear(6, 5, bias=False),
                          nn.ReLU(inplace=True), nn.Linear(5, 3))
    model[0].weight.requires_grad_(False)  # frozen weight, trainable bias
    x, y = torch.randn(17, 4), torch.randint(0, 3, (17,))
    for kind in ("exact", "empirical"):
        fast, ref = _both(model, _batches(x, y, None, 6), closed_form_only=True, kind=kind,
                          loss_fn=nn.CrossEntropyLoss())
        assert len(fast) == 4  # model[0].bias, model[2].weight, model[4].weight, .bias
        _assert_close(fast, ref)


def test_chunked_batches_give_the_same_fisher(monkeypatch):
    model = _mlp()
    x, y, t = _data(n=40)
    whole = fisher_diagonal(model, [(x, y, t)], kind="exact", output_map=_mask(-1e9))
    monkeypatch.setattr(importance, "_CHUNK_FLOATS", 500)  # a few samples per chunk
    assert importance._linear_chunk_size(importance._linear_layers(model)) < 10
    chunked = fisher_diagonal(model, [(x, y, t)], kind="exact", output_map=_mask(-1e9))
    _assert_close(chunked, whole)


def test_per_sample_losses_torch_func_cannot_batch(no_vmap):
    def loss_with_python_branch(out, target):  # float() on a tensor: vmap refuses it
        scale = 1.0 if float(out.detach().abs().max()) < 1e30 else 0.0
        return scale * nn.functional.cross_entropy(out, target)

    model = _mlp()
    x, y, _ = _data()
    fast = fisher_diagonal(model, _batches(x, y, None), kind="empirical",
                           loss_fn=loss_with_python_branch)
    ref = fisher_diagonal(model, _batches(x, y, None), kind="empirical",
                          loss_fn=nn.CrossEntropyLoss())
    _assert_close(fast, ref)


class _SharedLinear(nn.Module):  # the same layer twice per forward
    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(5, 5)
        self.out = nn.Linear(5, 3)

    def forward(self, x):
        return self.out(torch.tanh(self.hidden(torch.tanh(self.hidden(x)))))


class _FunctionalReuse(nn.Module):  # a layer's weight also used outside the layer
    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(5, 5)
        self.out = nn.Linear(5, 3)

    def forward(self, x):
        h = torch.tanh(self.hidden(x))
        return self.out(h + 0.1 * nn.functional.linear(x, self.hidden.weight))


class _Tied(nn.Module):  # one parameter registered in two layers
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(5, 5)
        self.b = nn.Linear(5, 5)
        self.b.weight = self.a.weight
        self.out = nn.Linear(5, 3)

    def forward(self, x):
        return self.out(torch.tanh(self.b(torch.tanh(self.a(x)))))


class _Sequence(nn.Module):  # a linear layer on a 3-D input (shared over positions)
    def __init__(self):
        super().__init__()
        self.step = nn.Linear(1, 4)
        self.out = nn.Linear(20, 3)

    def forward(self, x):
        return self.out(torch.tanh(self.step(x.unsqueeze(-1))).flatten(1))


NOT_COVERED = {
    "conv1d": lambda: nn.Sequential(nn.Unflatten(1, (1, 5)), nn.Conv1d(1, 2, 3), nn.Tanh(),
                                    nn.Flatten(), nn.Linear(6, 3)),
    "layernorm": lambda: nn.Sequential(nn.Linear(5, 6), nn.LayerNorm(6), nn.Tanh(),
                                       nn.Linear(6, 3)),
    "shared-call": _SharedLinear,
    "functional-reuse": _FunctionalReuse,
    "tied-parameter": _Tied,
    "3d-input": _Sequence,
}


@pytest.mark.parametrize("kind", ["exact", "empirical", "weighted-empirical"])
@pytest.mark.parametrize("make", NOT_COVERED.values(), ids=NOT_COVERED.keys())
def test_models_the_closed_form_does_not_cover_fall_back_to_vmap(make, kind):
    model = make()
    x, y = torch.randn(12, 5), torch.randint(0, 3, (12,))
    assert importance._linear_layers(model) is None or make in (
        _SharedLinear, _FunctionalReuse, _Sequence)  # the dynamic checks catch these
    fast, ref = _both(model, _batches(x, y, None, 5), kind=kind, loss_fn=nn.CrossEntropyLoss())
    _assert_close(fast, ref)


@pytest.mark.parametrize(("make", "width"), [(_mlp, 6), (_SharedLinear, 5)],
                         ids=["closed-form", "fallback"])
@pytest.mark.parametrize("training", [True, False])
def test_mode_restored_and_hooks_removed(make, width, training):
    model = make().train(training)
    x, y = torch.randn(8, width), torch.randint(0, 3, (8,))
    fisher_diagonal(model, _batches(x, y, None), kind="exact")
    assert model.training == training
    assert all(not m._forward_hooks for m in model.modules())


def test_hooks_removed_when_the_forward_fails():
    model = nn.Sequential(nn.Linear(4, 3), nn.Linear(5, 2))  # shape error in the 2nd layer
    with pytest.raises(RuntimeError):
        fisher_diagonal(model, [(torch.randn(3, 4), torch.zeros(3).long(), None)])
    assert all(not m._forward_hooks for m in model.modules())
    assert model.training


@pytest.mark.parametrize("kind", ["exact", "sampled", "empirical"])
def test_works_under_no_grad(kind):
    model = _mlp()
    x, y, t = _data()
    with torch.no_grad():
        fast, ref = _both(model, _batches(x, y, t), closed_form_only=True, kind=kind,
                          loss_fn=nn.CrossEntropyLoss(), output_map=_mask(-1e9))
    _assert_close(fast, ref)
