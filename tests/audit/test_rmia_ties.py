"""RMIA under ties (issue 25): the vectorised score against the plain loops of rmia_reference.py, ties
included, the tie rule's exchangeability, and the exact sums and resolution it rests on."""

import numpy as np
import pytest
from rmia_reference import naive_rmia

from lira_jax.audit.attacks.equalise import equalised_sizes, out_removals
from lira_jax.audit.attacks.leave_out import RESOLUTION, combine_without, snap
from lira_jax.audit.attacks.rmia import rmia

M, N = 8, 24
DYADIC_PHI = np.array([0.0, 40.0])  # σ(φ) = 0.5 and 1.0 exactly: every mean over models is exact, ties are exact


def balanced_keep(rng, num_models=M, num_examples=N):
    return np.argsort(rng.random((num_models, num_examples)), axis=0) < num_models // 2


def tied_scores(rng, num_models=M, num_examples=N, patterns=3):
    """float32[M, N, 2] whose examples repeat a few columns of dyadic probabilities: many exact ties."""
    columns = DYADIC_PHI[rng.integers(0, 2, (num_models, patterns, 2))]
    return columns[:, rng.integers(0, patterns, num_examples)].astype(np.float32)


def untied_scores(rng, num_models=M, num_examples=N):
    keep_signal = rng.normal(0, 2, (num_models, num_examples, 2)) + rng.normal(0, 1, (1, num_examples, 1))
    return keep_signal.astype(np.float32)


@pytest.mark.parametrize("population", [None, "even"])
@pytest.mark.parametrize("gamma", [1.0, 1.3, 0.8])
@pytest.mark.parametrize("online", [True, False])
@pytest.mark.parametrize("ties", [True, False])
def test_rmia_equals_the_plain_loops(ties, online, gamma, population):
    rng = np.random.default_rng([int(ties), int(online), int(gamma * 10)])
    keep = balanced_keep(rng)
    scores = tied_scores(rng) if ties else untied_scores(rng)
    chosen = None if population is None else np.arange(0, N, 2)
    result = rmia(scores, keep, None, online=online, gamma=gamma, population=chosen, chunk_examples=5)
    for target in range(M):
        expected = naive_rmia(scores, keep, target, online, gamma=gamma, population=chosen)
        np.testing.assert_allclose(result[target], expected, atol=1e-6, err_msg=f"target {target}")


def test_bernoulli_keep_with_two_models_left_out_of_one_set_equals_the_loops():
    """Bernoulli keep: a non-member's OUT set can lose both the target and a dropped shadow (the blocks)."""
    rng = np.random.default_rng(7)
    keep = rng.random((12, 30)) < 0.35
    first, second = out_removals(keep, np.arange(12), 0)
    assert ((first >= 0) & (second >= 0)).sum() > 20  # many pairs leave out two OUT models
    scores = untied_scores(rng, 12, 30)
    result = rmia(scores, keep, None, online=False)
    for target in range(12):
        np.testing.assert_allclose(result[target], naive_rmia(scores, keep, target, False), atol=1e-6)


@pytest.mark.parametrize("online", [True, False])
def test_a_member_and_a_non_member_with_equal_ratios_score_the_same(online):
    rng = np.random.default_rng(3)
    keep = balanced_keep(rng)
    scores = tied_scores(rng)
    scores[:, 1] = scores[:, 0] = DYADIC_PHI[1]  # both examples: σ = 1 in every model, whatever the sets
    for target in range(M):
        keep[:, 1] = keep[:, 0]
        keep[target, 1] = not keep[target, 0]  # one a member of the target, the other not
        result = rmia(scores, keep, [target], online=online)[0]
        assert result[0] == result[1], target


def test_identical_models_tie_every_online_ratio_at_one_half():
    """Every model the same: every LR(x, z) is 1, nothing is left to compare, every score 0.5."""
    rng = np.random.default_rng(0)
    scores = np.repeat(rng.normal(0, 3, (1, 50, 2)), M, axis=0).astype(np.float32)
    result = rmia(scores, balanced_keep(rng, M, 50), online=True)
    assert (result == 0.5).all()


def test_ties_count_on_neither_side():
    """One target, hand-made ratios: x's score counts the population strictly below it among those not tied
    with it. Members 0 and 1 tie with non-members 2 and 3; 4 lies below, 5 above."""
    keep = np.zeros((2, 6), dtype=bool)
    keep[0, :2] = True  # target 0 trained on examples 0 and 1
    keep[1, 2:] = True  # the shadow on the others, so every example is IN once and OUT once
    p_target = np.array([0.5, 0.5, 0.5, 0.5, 0.25, 1.0])
    scores = np.stack([np.log(p_target / (1 - p_target + 1e-300)), np.zeros(6)])[..., None].astype(np.float32)
    scores[0, 5] = 40.0
    result = rmia(scores, keep, [0], online=True)[0]
    # population of target 0: examples 2..5 (ratios 1, 1, 0.5, 2 against the shadow's 0.5)
    assert result[0] == result[1] == result[2] == result[3]
    assert np.floor(result[0] * 2) / 2 == 0.5  # of the untied 4 and 5, one lies below: 1 of 2
    assert np.floor(result[4] * 3) == 0 and np.floor(result[5] * 3) == 3  # 4 beats none of 2, 3, 5; 5 all


def test_out_removals_give_members_and_non_members_equal_out_sets():
    rng = np.random.default_rng(5)
    keep = balanced_keep(rng, 10, 200)
    targets = np.arange(10)
    first, second = out_removals(keep, targets, 0)
    counts = (~keep).sum(axis=0) - (first >= 0) - (second >= 0)
    assert (counts == 4).all()  # M/2 − 1 whatever the target's membership
    assert (equalised_sizes(keep, targets)[1] == counts).all()
    members = keep[targets]
    assert (first[~members] == np.broadcast_to(targets[:, None], first.shape)[~members]).all()
    assert not keep[first[members], np.nonzero(members)[1]].any()  # a member drops an OUT shadow


@pytest.mark.parametrize("combine, empty", [(np.add, 0.0), (np.logaddexp, -np.inf)])
def test_combine_without_equals_a_masked_sum(combine, empty):
    rng = np.random.default_rng(1)
    values = rng.normal(size=(9, 40))
    first = rng.integers(-1, 9, (5, 40))
    second = np.where(first >= 0, rng.integers(-1, 9, (5, 40)), -1)
    second = np.where(second == first, -1, second)
    result = combine_without(values, first, second, combine, empty)
    for t in range(5):
        for n in range(40):
            kept = [values[m, n] for m in range(9) if m not in (first[t, n], second[t, n])]
            assert result[t, n] == pytest.approx(combine.reduce(kept) if kept else empty, rel=1e-12)


def test_combine_without_never_cancels():
    """One dominant term left out: the rest comes back exactly, where total − term would read 0."""
    values = np.array([[1.0], [1e-300], [3e-300], [1e-17]])
    result = combine_without(values, np.array([[0]]), np.array([[3]]), np.add, 0.0)
    assert result[0, 0] == 4e-300


def test_snap_rounds_to_the_resolution_and_keeps_what_it_cannot_round():
    values = np.array([1e-17, -3e-17, 0.3 + 1e-14, np.inf, -np.inf, 1e30])
    snapped = snap(values)
    assert snapped[0] == snapped[1] == 0.0
    assert snapped[2] == np.round(0.3 / RESOLUTION) * RESOLUTION
    assert snapped[3] == np.inf and snapped[4] == -np.inf and snapped[5] == 1e30
