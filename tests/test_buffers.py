import numpy as np
import pytest
import torch
from scipy import stats

from retain.buffers import (
    ClassBalancedBuffer,
    ExperienceBalancedBuffer,
    ReplayBuffer,
    make_buffer,
)
from retain.errors import RetainError


def _stream(buffer, n, batch=7, classes=None):
    for start in range(0, n, batch):
        ids = torch.arange(start, min(n, start + batch))
        y = ids % 10 if classes is None else classes[ids]
        buffer.add(x=ids.float().unsqueeze(1), y=y)


def test_reservoir_is_uniform_over_the_stream():
    """Chi-square test: every position of a 1,000-sample stream is kept equally often."""
    n, capacity, trials = 1000, 50, 400
    counts = np.zeros(n)
    for seed in range(trials):
        buffer = ReplayBuffer(capacity, seed=seed)
        _stream(buffer, n)
        kept = buffer.contents()["x"].squeeze(1).long().numpy()
        assert len(np.unique(kept)) == capacity  # no duplicates, always full
        counts[kept] += 1
    # bin positions in 10 groups of 100 to have large expected counts
    groups = counts.reshape(10, -1).sum(1)
    expected = np.full(10, trials * capacity / 10)
    assert stats.chisquare(groups, expected).pvalue > 0.01
    # early and late halves equally represented
    assert abs(counts[:500].sum() - counts[500:].sum()) < 0.1 * counts.sum()


def test_reservoir_fills_then_stays_at_capacity():
    buffer = ReplayBuffer(20)
    _stream(buffer, 13)
    assert len(buffer) == 13 and buffer.seen == 13
    assert torch.equal(buffer.contents()["x"].squeeze(1), torch.arange(13.0))
    _stream(buffer, 100)
    assert len(buffer) == 20 and buffer.seen == 113


def test_class_balanced_stays_balanced_on_imbalanced_stream():
    # 90% of the stream is class 0
    g = torch.Generator().manual_seed(0)
    classes = (torch.rand(5000, generator=g) > 0.9).long() * torch.randint(1, 5, (5000,),
                                                                           generator=g)
    buffer = ClassBalancedBuffer(100, seed=0)
    _stream(buffer, 5000, classes=classes)
    counts = torch.bincount(buffer.contents()["y"], minlength=5)
    assert counts.sum() == 100
    assert counts.max() - counts.min() <= 1, counts


def test_sampling_and_state_round_trip_are_exact():
    a = ReplayBuffer(30, seed=3)
    _stream(a, 200)
    b = ReplayBuffer(30, seed=99)
    b.load_state_dict(a.state_dict())
    _stream(a, 50)
    _stream(b, 50)
    assert torch.equal(a.contents()["x"], b.contents()["x"])
    assert torch.equal(a.sample(16)["x"], b.sample(16)["x"])


def test_class_balanced_state_round_trip():
    a = ClassBalancedBuffer(25, seed=1)
    _stream(a, 300)
    b = ClassBalancedBuffer(25, seed=1)
    b.load_state_dict(a.state_dict())
    _stream(a, 40)
    _stream(b, 40)
    assert torch.equal(a.contents()["y"], b.contents()["y"])


def _experiences(buffer, sizes, batch=7, first=0):
    """Offer experiences of the given sizes; row ids encode (experience, position)."""
    for e, n in enumerate(sizes, start=first):
        buffer.new_experience()
        for start in range(0, n, batch):
            ids = torch.arange(start, min(n, start + batch)) + 10_000 * e
            buffer.add(x=ids.float().unsqueeze(1), y=torch.full_like(ids, e))


def test_experience_balanced_gives_every_experience_an_equal_share():
    buffer = ExperienceBalancedBuffer(100, seed=0)
    _experiences(buffer, [5000, 300, 40, 2000])  # very unequal experiences
    counts = torch.bincount(buffer.contents()["y"], minlength=4).tolist()
    assert counts == [25, 25, 25, 25]
    _experiences(buffer, [1000, 1000, 1000], first=4)  # 7 experiences: 14, ..., 15, 15
    counts = torch.bincount(buffer.contents()["y"], minlength=7).tolist()
    assert counts == [14, 14, 14, 14, 14, 15, 15] and len(buffer) == 100
    x = buffer.contents()["x"].squeeze(1).long()
    assert len(torch.unique(x)) == 100  # no row kept twice
    for slots, e in zip(buffer.share_slots, range(7), strict=True):  # bookkeeping agrees
        assert torch.all(buffer.fields["y"][slots] == e)


def test_experience_balanced_slides_when_experiences_outnumber_the_capacity():
    buffer = ExperienceBalancedBuffer(5, seed=0)
    _experiences(buffer, [20] * 8)
    assert sorted(buffer.contents()["y"].tolist()) == [3, 4, 5, 6, 7]  # the newest five


def test_experience_balanced_keeps_a_short_experience_whole_and_leaves_its_spare_slots():
    buffer = ExperienceBalancedBuffer(100, seed=0)
    _experiences(buffer, [1000, 10])
    assert torch.bincount(buffer.contents()["y"]).tolist() == [50, 10]


def test_experience_balanced_share_is_a_uniform_sample_of_its_experience():
    """Chi-square: after shrinking twice, each position of the first experience is kept
    equally often."""
    n, trials = 500, 400
    counts = np.zeros(n)
    for seed in range(trials):
        buffer = ExperienceBalancedBuffer(60, seed=seed)
        _experiences(buffer, [n, 200, 200])
        x = buffer.contents()["x"].squeeze(1).long()
        counts[x[x < 10_000].numpy()] += 1
    assert counts.sum() == trials * 20
    groups = counts.reshape(10, -1).sum(1)
    assert stats.chisquare(groups, np.full(10, trials * 2)).pvalue > 0.01


def test_experience_balanced_without_boundaries_is_a_reservoir():
    a, b = ExperienceBalancedBuffer(30, seed=3), ReplayBuffer(30, seed=3)
    _stream(a, 500)
    _stream(b, 500)
    assert len(a) == 30 and len(torch.unique(a.contents()["x"])) == 30
    assert a.seen == b.seen == 500


def test_experience_balanced_state_round_trip():
    a = ExperienceBalancedBuffer(40, seed=1)
    _experiences(a, [300, 100])
    b = ExperienceBalancedBuffer(40, seed=8)
    b.load_state_dict(a.state_dict())
    _experiences(a, [50, 70], first=2)
    _experiences(b, [50, 70], first=2)
    assert torch.equal(a.contents()["x"], b.contents()["x"])
    assert torch.equal(a.sample(16)["x"], b.sample(16)["x"])


def test_sampling_without_replacement_draws_distinct_rows():
    buffer = ReplayBuffer(50, seed=0)
    _stream(buffer, 30)
    rows = buffer.sample(128, replace=False)["x"].squeeze(1)
    assert sorted(rows.tolist()) == list(range(30))  # the whole memory, once each
    _stream(buffer, 500)
    rows = buffer.sample(20, replace=False)["x"].squeeze(1)
    assert len(rows) == 20 and len(set(rows.tolist())) == 20


def test_a_memory_of_another_policy_is_refused():
    a = ReplayBuffer(20)
    _stream(a, 50)
    with pytest.raises(RetainError, match="policy differs.*'reservoir'.*'experience-balanced'"):
        ExperienceBalancedBuffer(20).load_state_dict(a.state_dict())


def test_errors_name_the_problem():
    with pytest.raises(RetainError, match="positive"):
        ReplayBuffer(0)
    with pytest.raises(RetainError, match="unknown buffer policy"):
        make_buffer("fifo", 10)
    with pytest.raises(RetainError, match="empty"):
        ReplayBuffer(5).sample(2)
    buffer = ReplayBuffer(5)
    buffer.add(x=torch.zeros(2, 1), y=torch.zeros(2, dtype=torch.long))
    with pytest.raises(RetainError, match="fields"):
        buffer.add(x=torch.zeros(2, 1))
