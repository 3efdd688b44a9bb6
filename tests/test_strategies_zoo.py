"""The defining mechanism of each strategy of the zoo, checked against hand computation."""

import json
from functools import partial

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from retain import Learner, RetainError, datasets, scenarios
from retain.importance import fisher_diagonal
from retain.strategies import (
    AGEM,
    DER,
    ERACE,
    SI,
    DERPlusPlus,
    GDumb,
    ICaRL,
    Naive,
    Replay,
    make_strategy,
)
from retain.strategies.agem import project
from retain.strategies.er_ace import mask_absent_classes
from retain.strategies.gdumb import greedy_balanced
from retain.strategies.icarl import herding
from retain.strategies.mas import output_sensitivity


def mlp(n_in=64, n_out=10, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(n_in, 32), nn.ReLU(), nn.Linear(32, n_out))


@pytest.fixture(scope="module")
def digits_stream():
    train, test = datasets.digits()
    return scenarios.class_incremental(train, test, n_experiences=5)


# -- SI ------------------------------------------------------------------------------------
def test_si_path_integral_on_a_quadratic():
    """With plain SGD each step moves Δθ = −lr·g, so ω = −Σ g·Δθ = lr·Σ g², and Σω is the
    first-order loss decrease along the path."""
    torch.manual_seed(0)
    model = nn.Linear(3, 1, bias=False)
    x, y = torch.randn(16, 3), torch.randn(16, 1)
    lr = 0.01
    si = SI(c=1.0, xi=0.5)
    learner = Learner(model, torch.optim.SGD(model.parameters(), lr=lr), loss=nn.MSELoss(),
                      strategies=[si])
    w0 = model.weight.detach().clone()
    expected = torch.zeros_like(w0)
    w = w0.clone().requires_grad_(True)
    start_loss = F.mse_loss(x @ w.T, y).item()
    for _ in range(20):
        g, = torch.autograd.grad(F.mse_loss(x @ w.T, y), w)
        expected += lr * g**2
        w = (w - lr * g).detach().requires_grad_(True)
        learner.update(x, y)
    torch.testing.assert_close(si.omega[0], expected)
    decrease = start_loss - F.mse_loss(x @ w.T, y).item()
    assert float(si.omega[0].sum()) == pytest.approx(decrease, rel=0.05)
    # consolidation: Ω = ω / ((θ − θ_start)² + ξ), anchored at the current weights
    learner.learn(torch.utils.data.TensorDataset(x[:1], y[:1]), batch_size=1)
    assert si.penalty.A[0].shape == w0.shape and bool((si.penalty.A[0] > 0).all())
    assert float(si.omega[0].abs().sum()) == 0.0  # reset for the next experience


def test_si_penalty_pulls_towards_the_anchor():
    model = nn.Linear(2, 1, bias=False)
    si = SI(c=3.0, xi=1.0)
    learner = Learner(model, torch.optim.SGD(model.parameters(), lr=0.0), loss=nn.MSELoss(),
                      strategies=[si])
    si.penalty.reanchor([torch.ones(1, 2)], [torch.zeros(1, 2)], decay=1.0)
    with torch.no_grad():
        model.weight.fill_(2.0)
    # c·Σ Ω (θ − θ*)² = 3 · 2 · 4
    assert float(si.penalty_value(learner)) == pytest.approx(24.0)


# -- MAS -----------------------------------------------------------------------------------
def test_mas_importance_is_mean_abs_gradient_of_squared_output_norm():
    model = mlp(n_in=5, n_out=3)
    x = torch.randn(7, 5)
    expected = [torch.zeros_like(p) for p in model.parameters()]
    for xi in x:
        model.zero_grad()
        model(xi[None]).pow(2).sum().backward()
        for e, p in zip(expected, model.parameters(), strict=True):
            e += p.grad.abs() / len(x)
    got = output_sensitivity(model, [x[:4], x[4:]])
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g, e)


# -- A-GEM ---------------------------------------------------------------------------------
def test_agem_projection_makes_the_dot_product_non_negative():
    torch.manual_seed(1)
    ref = [torch.randn(4, 3), torch.randn(3)]
    g = [-r * 2 + 0.1 * torch.randn_like(r) for r in ref]  # points against the reference
    dot = lambda a, b: sum(float((u * v).sum()) for u, v in zip(a, b, strict=True))  # noqa: E731
    assert dot(g, ref) < 0
    project(g, ref)
    assert dot(g, ref) >= -1e-5
    aligned = [r.clone() for r in ref]
    project(aligned, ref)  # already compatible: unchanged
    for a, r in zip(aligned, ref, strict=True):
        torch.testing.assert_close(a, r)


def test_agem_fills_memory_after_each_experience(digits_stream):
    model = mlp()
    agem = AGEM(capacity=50, sample_size=20)
    learner = Learner(model, torch.optim.SGD(model.parameters(), lr=0.05), strategies=[agem])
    learner.learn(digits_stream[0], batch_size=10)
    assert agem.memory.size == 50
    learner.learn(digits_stream[1], batch_size=10)
    labels = set(agem.memory.contents()["y"].tolist())
    assert labels & set(digits_stream[0].classes) and labels & set(digits_stream[1].classes)


def test_agem_without_replacement_uses_the_exact_memory_gradient_when_memory_is_small(
        digits_stream):
    model = mlp()
    agem = AGEM(capacity=30, sample_size=128, replace=False)
    learner = Learner(model, torch.optim.SGD(model.parameters(), lr=0.05), strategies=[agem])
    learner.learn(digits_stream[0], batch_size=10)
    mem = agem.memory.contents()
    expected = torch.autograd.grad(F.cross_entropy(model(mem["x"]), mem["y"]),
                                   list(model.parameters()))
    for got, want in zip(agem.reference_gradient(learner), expected, strict=True):
        torch.testing.assert_close(got, want)  # all 30 rows, each once, in any order
    assert AGEM(replace=False).hyperparameters["replace"] is False
    assert AGEM().hyperparameters["replace"] is True  # every constructor argument is recorded


# -- DER / DER++ ---------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [DER, DERPlusPlus])
def test_der_stores_logits_from_insertion_time(cls):
    model = mlp(n_in=6, n_out=4)
    der = cls(capacity=100, batch_size=5)
    learner = Learner(model, torch.optim.SGD(model.parameters(), lr=0.5), strategies=[der])
    x, y = torch.randn(8, 6), torch.randint(0, 4, (8,))
    with torch.no_grad():
        before = model(x)
    learner.update(x, y)
    stored = der.buffer.contents()
    torch.testing.assert_close(stored["logits"], before)
    for _ in range(5):  # later steps change the model, not what was stored
        learner.update(torch.randn(8, 6), torch.randint(0, 4, (8,)))
    torch.testing.assert_close(der.buffer.contents()["logits"][:8], before)
    with torch.no_grad():
        assert not torch.allclose(model(x), before)


def test_der_loss_is_ce_on_new_rows_plus_alpha_mse_on_memory():
    model = mlp(n_in=6, n_out=4)
    der = DER(capacity=4, alpha=0.7, batch_size=4)
    learner = Learner(model, torch.optim.SGD(model.parameters(), lr=0.0), strategies=[der])
    mem_x, mem_y = torch.randn(4, 6), torch.randint(0, 4, (4,))
    learner.update(mem_x, mem_y)  # fills the memory (lr 0: model unchanged)
    target = der.buffer.contents()["logits"].clone()
    x, y = torch.randn(3, 6), torch.randint(0, 4, (3,))
    seen = {}
    der.buffer.sample = lambda k, fields=None, share=None: {"x": mem_x, "y": mem_y,
                                                            "logits": target}
    learner.strategies.append(_Probe(seen))
    learner._hooks["loss_terms"].append(learner.strategies[-1].loss_terms)
    learner.update(x, y)
    with torch.no_grad():
        expected = F.cross_entropy(model(x), y) + 0.7 * F.mse_loss(model(mem_x), target)
    assert float(seen["loss"]) == pytest.approx(float(expected), rel=1e-5)


def test_der_update_experience_stores_the_final_models_logits_after_the_experience(
        digits_stream):
    model = mlp()
    der = DERPlusPlus(capacity=40, batch_size=8, update="experience")
    learner = Learner(model, torch.optim.SGD(model.parameters(), lr=0.05), strategies=[der])
    learner.learn(digits_stream[0], batch_size=10)
    stored = der.buffer.contents()
    assert len(der.buffer) == 40 and set(stored["y"].tolist()) <= set(digits_stream[0].classes)
    model.eval()
    with torch.no_grad():  # the logits of the model as it ended the experience
        torch.testing.assert_close(stored["logits"], model(stored["x"]))
    assert der.hyperparameters["update"] == "experience"


def test_derpp_shared_sample_puts_both_terms_on_the_same_memory_rows():
    model = mlp(n_in=6, n_out=4)
    der = DERPlusPlus(capacity=4, alpha=0.7, beta=0.3, batch_size=4, independent=False)
    learner = Learner(model, torch.optim.SGD(model.parameters(), lr=0.0), strategies=[der])
    mem_x, mem_y = torch.randn(4, 6), torch.randint(0, 4, (4,))
    learner.update(mem_x, mem_y)  # fills the memory (lr 0: model unchanged)
    # a copy: the step's insertion may overwrite rows of the memory after they are drawn
    mem = {name: rows.clone() for name, rows in der.buffer.contents().items()}
    seen = {}
    learner.strategies.append(_Probe(seen))
    learner._hooks["loss_terms"].append(learner.strategies[-1].loss_terms)
    x, y = torch.randn(3, 6), torch.randint(0, 4, (3,))
    learner.update(x, y)
    assert der._label_rows == der._logit_rows  # one memory sample, one set of rows
    rows = der._logit_targets
    with torch.no_grad():  # Avalanche's DER loss, on whichever 4 rows were drawn
        idx = [int((mem["logits"] == r).all(1).nonzero()[0]) for r in rows]
        expected = (F.cross_entropy(model(x), y)
                    + 0.7 * F.mse_loss(model(mem["x"][idx]), rows)
                    + 0.3 * F.cross_entropy(model(mem["x"][idx]), mem["y"][idx]))
    assert float(seen["loss"]) == pytest.approx(float(expected), rel=1e-5)
    assert DERPlusPlus(independent=False).hyperparameters["independent"] is False
    assert DERPlusPlus().hyperparameters["independent"] is True


class _Probe(Naive):
    """Records the loss the other strategies produced."""

    def __init__(self, seen):
        super().__init__()
        self.seen = seen

    def loss_terms(self, learner, batch, loss):
        self.seen["loss"] = loss.detach()
        return loss


# -- ER-ACE --------------------------------------------------------------------------------
def test_er_ace_masks_absent_classes_for_incoming_rows():
    logits = torch.randn(5, 6, requires_grad=True)
    y = torch.tensor([1, 3, 3, 1, 1])
    loss = F.cross_entropy(mask_absent_classes(logits, y), y)
    masked = logits.detach().clone()
    masked[:, [0, 2, 4, 5]] = float("-inf")
    assert float(loss.detach()) == pytest.approx(float(F.cross_entropy(masked, y)), rel=1e-6)
    loss.backward()
    assert float(logits.grad[:, [0, 2, 4, 5]].abs().max()) == 0.0  # absent: not pushed down
    assert float(logits.grad[:, [1, 3]].abs().max()) > 0


def test_er_ace_loss_is_masked_ce_on_new_rows_plus_ce_on_memory():
    model = mlp(n_in=6, n_out=4)
    er_ace = ERACE(capacity=4, batch_size=4)
    learner = Learner(model, torch.optim.SGD(model.parameters(), lr=0.0), strategies=[er_ace])
    mem_x, mem_y = torch.randn(4, 6), torch.tensor([0, 1, 2, 3])
    learner.update(mem_x, mem_y)  # fills the memory (lr 0: model unchanged)
    x, y = torch.randn(3, 6), torch.tensor([2, 3, 3])
    seen = {}
    er_ace.buffer.sample = lambda k, fields=None, share=None: {"x": mem_x, "y": mem_y}
    learner.strategies.append(_Probe(seen))
    learner._hooks["loss_terms"].append(learner.strategies[-1].loss_terms)
    learner.update(x, y)
    with torch.no_grad():
        new = model(x)
        new[:, [0, 1]] = float("-inf")  # classes absent from the incoming batch
        expected = F.cross_entropy(new, y) + F.cross_entropy(model(mem_x), mem_y)
    assert float(seen["loss"]) == pytest.approx(float(expected), rel=1e-6)


def test_er_ace_needs_a_cross_entropy_learner():
    model = nn.Linear(3, 1)
    with pytest.raises(RetainError, match="ER-ACE needs a classification learner"):
        Learner(model, torch.optim.SGD(model.parameters(), lr=0.1), loss=nn.MSELoss(),
                strategies=[ERACE()])


def test_only_one_strategy_may_replace_the_criterion():
    model = mlp(n_in=6, n_out=4)
    with pytest.raises(RetainError, match="at most one strategy"):
        Learner(model, torch.optim.SGD(model.parameters(), lr=0.1),
                strategies=[ERACE(), ERACE(seed=1)])


# -- labelled and unlabelled rows ------------------------------------------------------------
def test_labelled_rows_after_unlabelled_rows_get_the_criterion():
    """DER appends unlabelled rows, then Replay appends labelled ones: the learner's criterion
    covers the incoming and the replayed rows, DER's term its own rows only."""
    model = mlp(n_in=6, n_out=4)
    der, replay = DER(capacity=4, alpha=0.7, batch_size=4), Replay(capacity=4, batch_size=2)
    learner = Learner(model, torch.optim.SGD(model.parameters(), lr=0.0),
                      strategies=[der, replay])
    mem_x, mem_y = torch.randn(4, 6), torch.randint(0, 4, (4,))
    learner.update(mem_x, mem_y)  # fills both memories (lr 0: model unchanged)
    target = der.buffer.contents()["logits"].clone()
    der.buffer.sample = lambda k, fields=None, share=None: {"x": mem_x, "y": mem_y,
                                                            "logits": target}
    replay.buffer.sample = lambda k, fields=None, share=None: {"x": mem_x[:2],
                                                               "y": mem_y[:2]}
    seen = {}
    learner.strategies.append(_Probe(seen))
    learner._hooks["loss_terms"].append(learner.strategies[-1].loss_terms)
    x, y = torch.randn(3, 6), torch.randint(0, 4, (3,))
    learner.update(x, y)
    with torch.no_grad():
        expected = (F.cross_entropy(model(torch.cat((x, mem_x[:2]))), torch.cat((y, mem_y[:2])))
                    + 0.7 * F.mse_loss(model(mem_x), target))
    assert float(seen["loss"]) == pytest.approx(float(expected), rel=1e-5)


def test_batch_keeps_labels_of_labelled_rows_only():
    from retain.strategies.base import Batch

    batch = Batch(torch.zeros(2, 3), torch.tensor([0, 1]))
    assert batch.append(torch.ones(4, 3), labelled=False) == 2
    assert batch.append(torch.ones(1, 3), torch.tensor([2])) == 6
    assert batch.x.shape == (7, 3) and batch.n_rows == 7
    assert batch.y.tolist() == [0, 1, 2] and batch.n_labelled == 3
    assert batch.labelled.tolist() == [0, 1, 6]
    prefix = Batch(torch.zeros(2, 3), torch.tensor([0, 1]))
    prefix.append(torch.ones(1, 3), torch.tensor([2]))
    prefix.append(torch.ones(4, 3), labelled=False)
    assert prefix.labelled is None and prefix.n_labelled == 3 and prefix.y.tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="need labels"):
        prefix.append(torch.ones(1, 3))


@pytest.mark.parametrize("cls", [DER, DERPlusPlus])
def test_der_works_for_regression(cls):
    """Logit matching needs no labels: DER's term is the MSE to the stored outputs of any model,
    DER++ replays targets through the learner's criterion (MSE here); and it trains."""
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    der = cls(capacity=4, batch_size=4)
    learner = Learner(model, torch.optim.SGD(model.parameters(), lr=0.0), loss=nn.MSELoss(),
                      strategies=[der])
    mem_x = torch.randn(4, 3)
    mem_y = mem_x.sum(1)
    with torch.no_grad():
        stored = model(mem_x)
    learner.update(mem_x, mem_y)  # fills the memory (lr 0: model unchanged)
    torch.testing.assert_close(der.buffer.contents()["logits"], stored)  # outputs, not labels
    der.buffer.sample = lambda k, fields=None, share=None: {"x": mem_x, "y": mem_y,
                                                            "logits": stored}
    seen = {}
    learner.strategies.append(_Probe(seen))
    learner._hooks["loss_terms"].append(learner.strategies[-1].loss_terms)
    x = torch.randn(3, 3)
    y = x.sum(1)
    with torch.no_grad():
        model.weight.add_(0.5)  # the model moved since the memory was filled
        expected = F.mse_loss(model(x)[:, 0], y) + der.alpha * F.mse_loss(model(mem_x), stored)
        if cls is DERPlusPlus:
            expected += der.beta * F.mse_loss(model(mem_x)[:, 0], mem_y)
    learner.update(x, y)
    assert float(seen["loss"]) == pytest.approx(float(expected), rel=1e-5)

    fresh = nn.Linear(3, 1)
    trained = Learner(fresh, torch.optim.SGD(fresh.parameters(), lr=0.05), loss=nn.MSELoss(),
                      strategies=[cls(capacity=20, batch_size=4)])
    x = torch.randn(40, 3)
    y = x.sum(1)
    epochs = [[trained.update(x[i : i + 4], y[i : i + 4]) for i in range(0, 40, 4)]
              for _ in range(5)]
    assert all(np.isfinite(epochs[-1])) and np.mean(epochs[-1]) < 0.2 * np.mean(epochs[0])


# -- GDumb ---------------------------------------------------------------------------------
def test_gdumb_greedy_sampler_balances_classes():
    rng = np.random.default_rng(0)
    stored: list[int] = []
    greedy_balanced([0] * 50, stored, 10, rng)
    assert stored == [0] * 10
    greedy_balanced([1] * 50 + [2] * 50, stored, 10, rng)
    counts = np.bincount(stored, minlength=3)
    assert counts.sum() == 10 and counts.max() - counts.min() <= 1


def test_gdumb_retrains_from_scratch_on_its_memory(digits_stream):
    def learn(perturb: bool):
        model = mlp()
        gdumb = GDumb(capacity=60, epochs=2, batch_size=10)
        learner = Learner(model, torch.optim.SGD(model.parameters(), lr=0.05),
                          strategies=[gdumb], seed=0)
        if perturb:  # whatever the stream did to the weights is thrown away
            with torch.no_grad():
                for p in model.parameters():
                    p.add_(torch.randn_like(p))
        learner.learn(digits_stream[0], batch_size=10)
        return model, gdumb

    a, gdumb = learn(False)
    b, _ = learn(True)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(pa, pb)
    assert gdumb.memory["y"].shape[0] == 60


# -- iCaRL ---------------------------------------------------------------------------------
def test_icarl_herding_is_greedy_mean_matching():
    torch.manual_seed(0)
    feats = torch.randn(40, 5)
    mu = feats.mean(0)
    chosen: list[int] = []
    for k in range(1, 9):  # the reference: try every remaining candidate
        rest = [i for i in range(40) if i not in chosen]
        dist = [float((mu - feats[chosen + [i]].sum(0) / k).norm()) for i in rest]
        chosen.append(rest[int(np.argmin(dist))])
    assert herding(feats, 8).tolist() == chosen
    first = int(((feats - mu).norm(dim=1)).argmin())
    assert chosen[0] == first  # the first exemplar is the sample nearest the mean
    random_mean = feats[torch.randperm(40)[:8]].mean(0)
    assert (feats[chosen].mean(0) - mu).norm() < (random_mean - mu).norm()


def test_icarl_keeps_balanced_exemplars_and_classifies_by_nearest_mean(digits_stream):
    model = mlp()
    icarl = ICaRL(capacity=40)
    learner = Learner(model, torch.optim.SGD(model.parameters(), lr=0.05), strategies=[icarl])
    learner.learn(digits_stream[0], batch_size=10, epochs=2)
    learner.learn(digits_stream[1], batch_size=10, epochs=2)
    counts = torch.bincount(icarl.memory["y"], minlength=10)
    assert counts[:4].tolist() == [10, 10, 10, 10] and int(counts[4:].sum()) == 0
    x, y = digits_stream[1].test.tensors
    pred = icarl.classify(learner, x)
    # the NME rule, by hand
    feats = F.normalize(model[:-1](x), dim=1)
    dists = torch.cdist(feats, icarl.class_means)
    assert torch.equal(pred, icarl.mean_labels[dists.argmin(1)])
    assert float((pred == y).float().mean()) > 0.5
    # the learner predicts and scores with the NME rule too
    assert torch.equal(learner.predict(x), pred)
    assert learner.evaluate(digits_stream[1].test) == float((pred == y).double().mean())
    icarl.nme = False
    assert torch.equal(learner.predict(x), learner.outputs(x).argmax(1))


def test_icarl_without_exemplars_predicts_with_the_model():
    model = mlp()
    learner = Learner(model, torch.optim.SGD(model.parameters(), lr=0.05),
                      strategies=[ICaRL(capacity=40)])
    x = torch.rand(5, 64)
    assert torch.equal(learner.predict(x), learner.outputs(x).argmax(1))


def test_two_classifiers_are_refused():
    model = mlp()
    with pytest.raises(RetainError, match="classifier"):
        Learner(model, torch.optim.SGD(model.parameters(), lr=0.05),
                strategies=[ICaRL(capacity=40), ICaRL(capacity=20)])


def test_icarl_can_mix_exemplars_in_at_the_training_set_rate(digits_stream):
    model = mlp()
    icarl = ICaRL(capacity=40, batch_size=0)
    learner = Learner(model, torch.optim.SGD(model.parameters(), lr=0.05), strategies=[icarl])
    learner.learn(digits_stream[0], batch_size=10)
    replayed = []
    original = icarl._mixed
    icarl._mixed = lambda n: replayed.append(original(n)) or replayed[-1]
    learner.learn(digits_stream[1], batch_size=10)
    seen = np.concatenate(replayed)
    assert abs(len(seen) - 40) <= 1  # each exemplar about once per epoch
    assert len(set(seen.tolist())) == len(seen)  # a shuffled pass, no repeats




def test_icarl_without_normalisation_uses_raw_features_and_plain_means(digits_stream):
    model = mlp()
    icarl = ICaRL(capacity=40, normalize=False)
    learner = Learner(model, torch.optim.SGD(model.parameters(), lr=0.05), strategies=[icarl])
    learner.learn(digits_stream[0], batch_size=10)
    with torch.no_grad():
        raw = model[:-1](icarl.memory["x"])
    for c, mean in zip(icarl.mean_labels.tolist(), icarl.class_means, strict=True):
        torch.testing.assert_close(mean, raw[icarl.memory["y"] == c].mean(0))
    x = digits_stream[0].test.tensors[0]
    with torch.no_grad():
        expected = icarl.mean_labels[torch.cdist(model[:-1](x), icarl.class_means).argmin(1)]
    assert torch.equal(learner.predict(x), expected)

def test_icarl_mean_batch_folds_batch_means_pairwise_in_herding_order(digits_stream):
    model = mlp()
    icarl = ICaRL(capacity=40, normalize=False, mean_batch=3)
    learner = Learner(model, torch.optim.SGD(model.parameters(), lr=0.05), strategies=[icarl])
    learner.learn(digits_stream[0], batch_size=10)
    with torch.no_grad():
        raw = model[:-1](icarl.memory["x"])
    folded_differs = False
    for c, mean in zip(icarl.mean_labels.tolist(), icarl.class_means, strict=True):
        rows = raw[icarl.memory["y"] == c]  # herding order
        expected = rows[:3].mean(0)
        for start in range(3, len(rows), 3):
            expected = (expected + rows[start : start + 3].mean(0)) / 2
        torch.testing.assert_close(mean, expected)
        folded_differs |= not torch.allclose(mean, rows.mean(0))
    assert folded_differs  # with more than two batches it is not the plain mean
    with pytest.raises(RetainError, match="mean_batch"):
        ICaRL(mean_batch=-1)


def test_icarl_replay_cast_uint8_replays_black_images_but_keeps_the_true_memory(digits_stream,
                                                                              monkeypatch):
    from retain.strategies.base import Batch

    model = mlp()
    icarl = ICaRL(capacity=40, batch_size=0, replay_cast_uint8=True)
    learner = Learner(model, torch.optim.SGD(model.parameters(), lr=0.05), strategies=[icarl])
    learner.learn(digits_stream[0], batch_size=10)
    x = icarl.memory["x"]
    assert ((x > 0) & (x < 1)).any()  # true exemplars: grey levels in (0, 1)
    cast = icarl._replay["x"]
    assert torch.equal(cast, torch.floor(x) / 255)  # uint8 of [0, 1] floats: 0, or 1 at 1.0
    assert cast.max() <= 1 / 255 and torch.equal(icarl._replay["y"], icarl.memory["y"])
    appended = []
    original = Batch.append
    def spy(self, *rows):
        appended.append(rows[0])
        return original(self, *rows)
    monkeypatch.setattr(Batch, "append", spy)
    learner.learn(digits_stream[1], batch_size=10)
    monkeypatch.undo()
    replayed = torch.cat(appended)
    assert len(replayed) > 0 and replayed.max() <= 1 / 255
    # the state round trip rebuilds the replayed rows from the saved (true) memory
    other = ICaRL(capacity=40, batch_size=0, replay_cast_uint8=True)
    other.load_state_dict(icarl.state_dict())
    assert torch.equal(other.memory["x"], icarl.memory["x"])
    assert torch.equal(other._replay["x"], torch.floor(icarl.memory["x"]) / 255)
    plain = ICaRL(capacity=40, batch_size=0)  # a state saved with other settings is refused
    with pytest.raises(RetainError, match="replay_cast_uint8: saved True, here False"):
        plain.load_state_dict(icarl.state_dict())
    other.replay_cast_uint8 = False
    other._refresh_replay()
    assert other._replay["x"] is other.memory["x"]


def test_icarl_bce_is_the_papers_sigmoid_loss_with_teacher_targets_on_old_classes(digits_stream):
    model = mlp()
    icarl = ICaRL(capacity=40, batch_size=0, loss="bce")
    learner = Learner(model, torch.optim.SGD(model.parameters(), lr=0.05), strategies=[icarl])
    assert learner._criterion is not None and not learner._hooks["loss_terms"]
    x0, y0 = digits_stream[0].train.tensors
    first = learner.update(x0[:10], y0[:10])  # no teacher yet: one-hot targets, seen classes
    learner.learn(digits_stream[0], batch_size=10)
    x, y = digits_stream[1].train.tensors
    x, y = x[:10], y[:10]
    with torch.no_grad():
        out = model(x)
        old = torch.sigmoid(icarl.teacher(x))
    seen = sorted(set(y0.tolist()) | set(y.tolist()))
    old_classes = sorted(set(y0.tolist()))
    target = F.one_hot(y, 10).float()
    target[:, old_classes] = old[:, old_classes]  # old units: the teacher, even for their rows
    expected = F.binary_cross_entropy_with_logits(out[:, seen], target[:, seen])
    assert learner.update(x, y) == pytest.approx(float(expected), rel=1e-6)
    assert first > 0
    # the teacher's targets keep the old classes alive where cross-entropy would erase them
    assert not torch.equal(target[:, old_classes], torch.zeros(10, len(old_classes)))
    with pytest.raises(RetainError, match="loss"):
        ICaRL(capacity=40, loss="softmax")


# -- EWC's Fisher options (retain.importance) -----------------------------------------------
def test_empirical_fisher_matches_a_loop_over_samples():
    model = mlp(n_in=5, n_out=3)
    x, y = torch.randn(6, 5), torch.randint(0, 3, (6,))
    expected = [torch.zeros_like(p) for p in model.parameters()]
    for xi, yi in zip(x, y, strict=True):
        model.zero_grad()
        F.cross_entropy(model(xi[None]), yi[None]).backward()
        for e, p in zip(expected, model.parameters(), strict=True):
            e += p.grad**2 / len(x)
    got = fisher_diagonal(model, [(x, y, None)], kind="empirical", loss_fn=nn.CrossEntropyLoss())
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g, e)


def _squared_grads(model, scalars, weights=None) -> list[torch.Tensor]:
    """Σ_i w_i (∂s_i/∂θ)², one autograd call per scalar: the reference for the estimators."""
    params = list(model.parameters())
    total = [torch.zeros_like(p) for p in params]
    for i, scalar in enumerate(scalars):
        grads = torch.autograd.grad(scalar, params, retain_graph=True)
        for t, g in zip(total, grads, strict=True):
            t += (1.0 if weights is None else float(weights[i])) * g**2
    return total


@pytest.mark.parametrize("closed_form", [True, False], ids=["closed-form", "torch.func"])
def test_exact_sampled_and_batched_fisher_match_their_definitions(closed_form):
    model = mlp(n_in=5, n_out=3)
    model.eval()
    x, y = torch.randn(6, 5), torch.randint(0, 3, (6,))
    fisher = partial(fisher_diagonal, model, closed_form=closed_form)
    # exact: E_x Σ_c p(c|x) (∂ log p(c|x)/∂θ)², per sample and class
    terms, weights = [], []
    for xi in x:
        log_p = torch.log_softmax(model(xi[None]), dim=1)[0]
        terms += list(log_p)
        weights += log_p.detach().exp().tolist()
    expected = [t / 6 for t in _squared_grads(model, terms, weights)]
    _assert_all_close(fisher([(x, y, None)], kind="exact"), expected)
    # exact, regression: unit-variance Gaussian, E_x Σ_k (∂f_k/∂θ)²
    outputs = [o for xi in x for o in model(xi[None])[0]]
    expected = [t / 6 for t in _squared_grads(model, outputs)]
    _assert_all_close(fisher([(x, y.float(), None)], kind="exact", task_type="regression"),
                      expected)
    # sampled: one label per sample drawn from p(·|x) (the same draws: the same generator)
    with torch.no_grad():
        drawn = torch.multinomial(torch.softmax(model(x), -1), 1,
                                  generator=torch.Generator().manual_seed(3))[:, 0]
    scores = [torch.log_softmax(model(xi[None]), 1)[0, c] for xi, c in zip(x, drawn,
                                                                           strict=True)]
    expected = [t / 6 for t in _squared_grads(model, scores)]
    got = fisher([(x, y, None)], kind="sampled", generator=torch.Generator().manual_seed(3))
    _assert_all_close(got, expected)
    # batched-empirical: the mean over mini-batches of the squared mini-batch gradient
    halves = [(x[:4], y[:4], None), (x[4:], y[4:], None)]
    losses = [F.cross_entropy(model(b), c) for b, c, _ in halves]
    expected = [t / 2 for t in _squared_grads(model, losses)]
    _assert_all_close(fisher(halves, kind="batched-empirical", loss_fn=nn.CrossEntropyLoss()),
                      expected)


def test_the_sampled_fisher_averages_to_the_exact_one():
    """Monte-Carlo over the drawn labels: the mean of many sampled estimates is the exact one."""
    model = mlp(n_in=5, n_out=3)
    x, y = torch.randn(6, 5), torch.randint(0, 3, (6,))
    exact = fisher_diagonal(model, [(x, y, None)], kind="exact")
    g = torch.Generator().manual_seed(0)
    draws = [fisher_diagonal(model, [(x, y, None)], kind="sampled", generator=g)
             for _ in range(300)]
    mean = [torch.stack(d).mean(0) for d in zip(*draws, strict=True)]
    total = float(sum(e.sum() for e in exact))
    error = float(sum((m - e).abs().sum() for m, e in zip(mean, exact, strict=True)))
    assert error < 0.1 * total


def _assert_all_close(got, expected) -> None:
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-4, atol=1e-7)


# -- state, composition, and what they are for -------------------------------------------
SPECS = [("si", {}), ("mas", {}), ("agem", {"capacity": 40, "sample_size": 16}),
         ("der", {"capacity": 40}), ("derpp", {"capacity": 40}), ("er-ace", {"capacity": 40}),
         ("gdumb", {"capacity": 40, "epochs": 1}), ("icarl", {"capacity": 40})]


def _json_or_tensors(value) -> None:
    if isinstance(value, torch.Tensor):
        return
    if isinstance(value, dict):
        for v in value.values():
            _json_or_tensors(v)
    elif isinstance(value, list | tuple):
        for v in value:
            _json_or_tensors(v)
    else:
        json.dumps(value)


@pytest.mark.parametrize("name,params", SPECS, ids=[s[0] for s in SPECS])
def test_state_dict_round_trip_resumes_identically(name, params, digits_stream):
    def fresh():
        model = mlp()
        return Learner(model, torch.optim.SGD(model.parameters(), lr=0.05),
                       strategies=[make_strategy(name, **params), SI(c=0.1)], seed=0)

    a = fresh()
    for e in digits_stream[:2]:
        a.learn(e, batch_size=10)
    state = a.state_dict()
    for s in state["strategies"]:
        _json_or_tensors(s["state"])
    b = fresh()
    b.load_state_dict(state)
    for learner in (a, b):
        learner.learn(digits_stream[2], batch_size=10)
    for pa, pb in zip(a.model.parameters(), b.model.parameters(), strict=True):
        torch.testing.assert_close(pa, pb)


def test_replay_type_methods_retain_more_than_naive(digits_stream):
    def final_accuracy(strategy):
        model = mlp()
        learner = Learner(model, torch.optim.SGD(model.parameters(), lr=0.05),
                          strategies=[strategy], seed=0)
        return learner.run(digits_stream, epochs=4, batch_size=10).average_accuracy

    naive = final_accuracy(Naive())
    for strategy in (DERPlusPlus(capacity=200), ERACE(capacity=200), GDumb(capacity=200),
                     ICaRL(capacity=200)):
        assert final_accuracy(strategy) > naive + 0.3, strategy


def test_replay_filled_after_each_experience_replays_past_experiences_only(digits_stream):
    model = mlp()
    replay = Replay(capacity=60, update="experience")
    learner = Learner(model, torch.optim.SGD(model.parameters(), lr=0.05), strategies=[replay])
    assert not replay.overrides("after_step") and replay.overrides("after_experience")
    seen_during = []
    original = replay.extend_batch

    def spy(learner_, batch):
        seen_during.append(replay.buffer.size)
        original(learner_, batch)

    learner._hooks["extend_batch"] = [spy]
    learner.learn(digits_stream[0], batch_size=10)
    assert set(seen_during) == {0}  # nothing replayed while learning the first experience
    classes = [set(e.train.tensors[1].tolist()) for e in digits_stream]
    first = set(replay.buffer.contents()["y"].tolist())
    assert replay.buffer.size == 60 and first == classes[0]
    learner.learn(digits_stream[1], batch_size=10)
    labels = replay.buffer.contents()["y"]
    assert replay.buffer.size == 60
    # reservoir over both experiences' samples: both are in the memory
    assert set(labels.tolist()) == classes[0] | classes[1]
    assert Replay(capacity=5).overrides("after_step")
    assert not Replay(capacity=5).overrides("after_experience")
    # an experience sorted by label still leaves a uniform sample of it in the memory (the
    # reservoir is uniform over one pass whatever its order)
    x, y = digits_stream[0].train.tensors
    order = y.argsort(stable=True)
    ordered = torch.utils.data.TensorDataset(x[order], y[order])
    sorted_replay = Replay(capacity=40, update="experience")
    model = mlp()
    Learner(model, torch.optim.SGD(model.parameters(), lr=0.05),
            strategies=[sorted_replay]).learn(ordered, batch_size=10)
    counts = torch.bincount(sorted_replay.buffer.contents()["y"], minlength=10)
    assert (counts[sorted(classes[0])] >= 10).all()  # both classes, not the first 40 rows
    with pytest.raises(RetainError, match="update must be"):
        Replay(update="day")
