"""EWC's math: penalty, its fused gradient, and the Fisher estimators against closed forms."""

import math
import warnings

import pytest
import torch
from torch import nn

from retain import Learner, RetainWarning
from retain.importance import fisher_diagonal
from retain.strategies import EWC, OnlineEWC
from retain.strategies.common import QuadraticPenalty


def _batches(x, y, size=16):
    return [(x[i : i + size], y[i : i + size], None) for i in range(0, len(x), size)]


def test_exact_fisher_of_linear_softmax_matches_closed_form():
    # log p_c = z_c - logsumexp(z), z = Wx + b  =>  F_W[k, j] = E[p_k (1 - p_k) x_j^2]
    model = nn.Linear(5, 4)
    x = torch.randn(64, 5)
    y = torch.randint(0, 4, (64,))
    weight, bias = fisher_diagonal(model, _batches(x, y), kind="exact")
    p = torch.softmax(model(x), dim=1).detach()
    v = p * (1 - p)
    torch.testing.assert_close(weight, (v.unsqueeze(2) * x.pow(2).unsqueeze(1)).mean(0))
    torch.testing.assert_close(bias, v.mean(0))


def test_empirical_fisher_matches_per_sample_loop():
    model = nn.Sequential(nn.Linear(3, 6), nn.Tanh(), nn.Linear(6, 3))
    x, y = torch.randn(20, 3), torch.randint(0, 3, (20,))
    fast = fisher_diagonal(model, _batches(x, y, 7), kind="empirical",
                           loss_fn=nn.CrossEntropyLoss())
    slow = [torch.zeros_like(p) for p in model.parameters()]
    for i in range(20):
        model.zero_grad()
        nn.functional.cross_entropy(model(x[i : i + 1]), y[i : i + 1]).backward()
        for s, p in zip(slow, model.parameters(), strict=True):
            s += p.grad.pow(2) / 20
    for a, b in zip(fast, slow, strict=True):
        torch.testing.assert_close(a, b)


def test_exact_fisher_for_regression_is_gauss_newton_diagonal():
    model = nn.Linear(4, 2)
    x = torch.randn(30, 4)
    weight, bias = fisher_diagonal(model, _batches(x, torch.zeros(30, 2)), kind="exact",
                                   task_type="regression")
    # d f_k / d W[k, j] = x_j, so sum_k (df_k/dW)^2 = x_j^2 on row k
    torch.testing.assert_close(weight, x.pow(2).mean(0).expand(2, 4))
    torch.testing.assert_close(bias, torch.ones(2))


def _textbook_penalty(params, tasks, lambda_):
    return lambda_ / 2 * sum(
        (f * (p - a).pow(2)).sum()
        for fishers, anchors in tasks
        for p, f, a in zip(params, fishers, anchors, strict=True))


def test_folded_quadratic_equals_textbook_sum_over_tasks():
    """Σ_t F_t (θ-θ*_t)² folded into one quadratic: same value and same gradient."""
    model = nn.Linear(3, 2)
    params = list(model.parameters())
    penalty = QuadraticPenalty()
    tasks = []
    for _ in range(4):
        fishers = [torch.rand_like(p) for p in params]
        anchors = [torch.randn_like(p) for p in params]
        penalty.accumulate(fishers, anchors)
        tasks.append((fishers, anchors))
    textbook = _textbook_penalty(params, tasks, 7.0)
    textbook.backward()
    expected = [p.grad.clone() for p in params]
    for p in params:
        p.grad = torch.zeros_like(p)
    penalty.add_gradient(params, 7.0)
    for p, e in zip(params, expected, strict=True):
        torch.testing.assert_close(p.grad, e)
    torch.testing.assert_close(penalty.value(params, 7.0), textbook.detach())


def test_ewc_step_equals_hand_written_penalty_step():
    torch.manual_seed(1)
    x1, y1 = torch.randn(40, 4), torch.randint(0, 3, (40,))
    x2, y2 = torch.randn(8, 4), torch.randint(0, 3, (8,))
    model = nn.Linear(4, 3)
    learner = Learner(model, torch.optim.SGD(model.parameters(), lr=0.1),
                      strategies=[EWC(lambda_=50.0)])
    learner.learn(torch.utils.data.TensorDataset(x1, y1), batch_size=8)
    fisher = fisher_diagonal(model, _batches(x1, y1, 1024), kind="exact")
    anchors = [p.detach().clone() for p in model.parameters()]
    # move away from the anchor so the penalty is not zero, then compare one step
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    twin = nn.Linear(4, 3)
    twin.load_state_dict(model.state_dict())
    learner.update(x2, y2)
    loss = nn.functional.cross_entropy(twin(x2), y2)
    loss = loss + _textbook_penalty(list(twin.parameters()), [(fisher, anchors)], 50.0)
    loss.backward()
    with torch.no_grad():
        for p in twin.parameters():
            p -= 0.1 * p.grad
    for a, b in zip(model.parameters(), twin.parameters(), strict=True):
        torch.testing.assert_close(a, b)


def test_online_ewc_decays_fisher_and_keeps_one_anchor():
    model = nn.Linear(2, 2)
    params = list(model.parameters())
    strategy = OnlineEWC(lambda_=1.0, gamma=0.5)
    f1 = [torch.ones_like(p) for p in params]
    f2 = [2 * torch.ones_like(p) for p in params]
    strategy.consolidate(f1, [torch.zeros_like(p) for p in params])
    anchor = [torch.full_like(p, 3.0) for p in params]
    strategy.consolidate(f2, anchor)
    expected = 0.5 * 1 + 2  # gamma * F1 + F2
    for a in strategy.penalty.A:
        assert torch.all(a == expected)
    with torch.no_grad():
        for p in params:
            p.fill_(4.0)
    n = sum(p.numel() for p in params)
    assert float(strategy.penalty.value(params, 1.0)) == pytest.approx(0.5 * expected * n)


@pytest.mark.parametrize("kind", ["exact", "sampled", "empirical", "batched-empirical"])
def test_every_fisher_kind_is_positive_and_finite(kind):
    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))
    x, y = torch.randn(25, 2, 3), torch.randint(0, 3, (25,))
    fisher = fisher_diagonal(model, _batches(x, y, 10), kind=kind,
                             loss_fn=nn.CrossEntropyLoss(), generator=torch.Generator())
    assert all(torch.isfinite(f).all() and (f >= 0).all() for f in fisher)
    assert sum(float(f.sum()) for f in fisher) > 0


def test_penalty_gradient_is_not_part_of_the_graph():
    model = nn.Linear(3, 2)
    learner = Learner(model, torch.optim.SGD(model.parameters(), lr=0.1),
                      strategies=[EWC(lambda_=1.0)])
    data = torch.utils.data.TensorDataset(torch.randn(16, 3), torch.randint(0, 2, (16,)))
    learner.learn(data, batch_size=8)
    learner.update(torch.randn(4, 3), torch.randint(0, 2, (4,)))
    assert all(p.grad is not None and p.grad.grad_fn is None for p in model.parameters())


def _stiff_learner(lr, lambda_, optimizer="sgd", strategy=EWC):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    opt = (torch.optim.SGD(model.parameters(), lr=lr) if optimizer == "sgd"
           else torch.optim.Adam(model.parameters(), lr=lr))
    learner = Learner(model, opt, strategies=[strategy(lambda_=lambda_)])
    g = torch.Generator().manual_seed(0)
    data = torch.utils.data.TensorDataset(3 * torch.randn(64, 4, generator=g),
                                          torch.randint(0, 3, (64,), generator=g))
    return learner, data


def test_ewc_warns_when_sgd_cannot_follow_the_penalty():
    learner, data = _stiff_learner(lr=0.5, lambda_=1000.0)
    with pytest.warns(RetainWarning, match="diverge; use lambda_ <") as caught:
        learner.learn(data, batch_size=16)
    assert caught[0].filename == __file__  # points at the user's learn() call
    strategy = learner.strategies[0]
    stiffest = float(torch.stack([a.max() for a in strategy.penalty.A]).max())
    assert 0.5 * 1000.0 * stiffest > 2
    # and it is right: the penalty alone, stepped by SGD from a small offset off the anchor,
    # grows instead of shrinking (a few steps only: float32 overflows to inf soon after)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in learner.model.parameters():
            p.add_(1e-3 * torch.randn(p.shape, generator=g))
    before = float(strategy.penalty_value(learner))
    for _ in range(4):
        learner.optimizer.zero_grad()
        strategy.after_backward(learner, None)
        learner.optimizer.step()
    after = float(strategy.penalty_value(learner))
    assert before > 0 and math.isfinite(after) and after > 10 * before


def test_ewc_does_not_warn_when_stable_or_adaptive():
    for lr, lambda_, optimizer in ((0.01, 1.0, "sgd"), (0.5, 1000.0, "adam")):
        learner, data = _stiff_learner(lr, lambda_, optimizer)
        with warnings.catch_warnings():
            warnings.simplefilter("error", RetainWarning)
            learner.learn(data, batch_size=16)


@pytest.mark.parametrize("call", ["learn", "run", "own loop"])
@pytest.mark.parametrize("strategy", [EWC, OnlineEWC])
def test_ewc_warning_points_at_the_users_line_however_it_is_reached(call, strategy):
    from retain.scenarios import Experience

    learner, data = _stiff_learner(lr=0.5, lambda_=1000.0, strategy=strategy)
    with pytest.warns(RetainWarning, match="diverge; use lambda_ <") as caught:
        if call == "learn":
            learner.learn(data, batch_size=16)
        elif call == "run":  # through retain's run loop and its recorder
            learner.run([Experience(data, test=data)], batch_size=16)
        else:
            experience = Experience(data)
            learner.begin_experience(experience)
            learner.end_experience(experience)
    assert [w.filename for w in caught] == [__file__]
