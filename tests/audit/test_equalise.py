"""Equalised counts (lira_jax.audit.attacks.equalise) against a naive loop over targets, examples and views."""

from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lira_jax.audit.attacks.equalise import choose_drops, drop_hash, equalised_removals, raw_removals, target_sets
from lira_jax.shadow.data import make_keep


def summary(values: np.ndarray, members: np.ndarray) -> SimpleNamespace:
    """The SetSummary of each example's set {m : members[m, n]}, from sorted copies (the naive way)."""
    num_examples, num_views = values.shape[1:]
    fields = {name: np.full((num_examples, num_views), np.nan) for name in ("shift", "sum", "sum_squares")}
    window = np.full((4, num_examples, num_views), np.nan)
    size = members.sum(axis=0)
    for n in range(num_examples):
        chosen = np.sort(values[members[:, n], n].astype(np.float64), axis=0)  # [k, V]
        if not len(chosen):
            continue
        p = (len(chosen) - 1) // 2
        fields["shift"][n] = chosen[p]
        fields["sum"][n] = (chosen - chosen[p]).sum(axis=0)
        fields["sum_squares"][n] = ((chosen - chosen[p]) ** 2).sum(axis=0)
        for offset in range(4):
            window[offset, n] = chosen[min(max(p - 1 + offset, 0), len(chosen) - 1)]
    return SimpleNamespace(size=size, **fields, low=window[0], middle=window[1], high=window[2], high2=window[3])


def naive_dropped(keep: np.ndarray, target: int, example: int, start: int, seed: int) -> tuple[int, bool] | None:
    """(model, from IN) that target drops on example, by the rule as written, or None."""
    others = [m for m in range(keep.shape[0]) if m != target]
    ins = [m for m in others if keep[m, example]]
    outs = [m for m in others if not keep[m, example]]
    if len(ins) == len(outs):
        return None
    side = ins if len(ins) > len(outs) else outs
    j = int(drop_hash(seed, np.array([target]), np.array([start + example]))[0, 0] % np.uint64(len(side)))
    return side[j], len(ins) > len(outs)


def keeps(draw_kind: str, num_models: int, num_examples: int, seed: int) -> np.ndarray:
    if draw_kind == "balanced":
        return make_keep(num_models, num_examples, seed=seed)
    return make_keep(num_models, num_examples, seed=seed, mode="bernoulli", probability=0.3 + 0.4 * (seed % 2))


@settings(max_examples=40, deadline=None)
@given(
    kind=st.sampled_from(["balanced", "bernoulli"]),
    half_models=st.integers(2, 9),
    num_examples=st.integers(1, 12),
    start=st.integers(0, 10**6),
    seed=st.integers(0, 2**32 - 1),
)
def test_drops_follow_the_rule(kind, half_models, num_examples, start, seed):
    keep = keeps(kind, 2 * half_models, num_examples, seed)
    targets = np.arange(2 * half_models)
    drops = choose_drops(keep, targets, start, seed)
    for t in targets:
        for n in range(num_examples):
            expected = naive_dropped(keep, t, n, start, seed)
            if expected is None:
                assert drops.model[t, n] == -1 and not drops.from_in[t, n]
            else:
                assert (drops.model[t, n], drops.from_in[t, n]) == expected


@pytest.mark.parametrize("kind", ["balanced", "bernoulli"])
@pytest.mark.parametrize("num_models", [4, 6, 8, 16])
@pytest.mark.parametrize("centre", ["median", "mean"])
@pytest.mark.parametrize("equalised", [True, False])
def test_target_sets_equal_a_naive_loop(kind, num_models, centre, equalised):
    rng = np.random.default_rng(num_models)
    num_examples, num_views = 40, 2
    keep = keeps(kind, num_models, num_examples, seed=num_models + 1)
    values = rng.integers(-3, 4, (num_models, num_examples, num_views)).astype(np.float32)  # many ties
    values[:, ::3] = rng.normal(size=(num_models, len(range(0, num_examples, 3)), num_views))
    targets = np.array([0, num_models // 2, num_models - 1])
    start = 1000
    removals = equalised_removals(keep, targets, start, seed=7) if equalised else raw_removals(keep, targets)
    sets = target_sets(summary(values, keep), summary(values, ~keep), values, targets, removals, centre, online=True)
    for row, t in enumerate(targets):
        for n in range(num_examples):
            dropped = naive_dropped(keep, t, n, start, 7) if equalised else None
            shadows = [m for m in range(num_models) if m != t and (dropped is None or m != dropped[0])]
            for side, members in (
                ("in", [m for m in shadows if keep[m, n]]),
                ("out", [m for m in shadows if not keep[m, n]]),
            ):
                assert getattr(sets, f"size_{side}")[row, n] == len(members)
                if not members:
                    continue
                chosen = values[members, n].astype(np.float64)
                centre_value = np.median(chosen, axis=0) if centre == "median" else chosen.mean(axis=0)
                np.testing.assert_allclose(
                    getattr(sets, f"residual_{side}")[row, n], values[t, n] - centre_value, atol=1e-9
                )
                np.testing.assert_allclose(getattr(sets, f"variance_{side}")[row, n], chosen.var(axis=0), atol=1e-9)


@pytest.mark.parametrize("num_models", [4, 8, 16, 64])
def test_balanced_sets_come_out_equal(num_models):
    keep = make_keep(num_models, 300, seed=3)
    targets = np.arange(num_models)
    values = np.zeros((num_models, 300, 1), np.float32)
    sets = target_sets(
        summary(values, keep),
        summary(values, ~keep),
        values,
        targets,
        equalised_removals(keep, targets),
        "median",
        True,
    )
    assert (sets.size_in == num_models // 2 - 1).all() and (sets.size_out == num_models // 2 - 1).all()


def test_drops_do_not_depend_on_the_chunking():
    keep = make_keep(10, 50, seed=0, mode="bernoulli")
    whole = choose_drops(keep, np.arange(10), 0, seed=5)
    parts = [choose_drops(keep[:, at : at + 7], np.arange(10), at, seed=5) for at in range(0, 50, 7)]
    np.testing.assert_array_equal(np.concatenate([part.model for part in parts], axis=1), whole.model)
    other_seed = choose_drops(keep, np.arange(10), 0, seed=6)
    assert (other_seed.model != whole.model).any()


@pytest.mark.parametrize("kind", ["balanced", "bernoulli"])
def test_sets_without_a_centre_have_the_same_variances(kind):
    rng = np.random.default_rng(5)
    keep = keeps(kind, 12, 30, seed=2)
    values = rng.normal(size=(12, 30, 3)).astype(np.float32)
    targets = np.array([0, 4, 11])
    args = summary(values, keep), summary(values, ~keep), values, targets, equalised_removals(keep, targets)
    with_mean, variances_only = (target_sets(*args, centre, online=True) for centre in ("mean", None))
    assert variances_only.residual_in is None and variances_only.residual_out is None
    for side in ("in", "out"):
        np.testing.assert_array_equal(
            getattr(variances_only, f"variance_{side}"), getattr(with_mean, f"variance_{side}")
        )
        np.testing.assert_array_equal(getattr(variances_only, f"size_{side}"), getattr(with_mean, f"size_{side}"))
