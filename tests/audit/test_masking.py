"""lira_jax.audit.inputs.masking: each mask against a plain NumPy version on small arrays, and the bad specs."""

import numpy as np
import pytest
from scipy.special import softmax

from lira_jax.audit.inputs.masking import Mask, check_mask, mask_logits, parse_mask
from lira_jax.audit.inputs.phi import logit_scale
from lira_jax.errors import UserError


def small_logits(seed, shape=(3, 7, 2, 6), scale=3.0):
    return np.random.default_rng(seed).normal(0, scale, size=shape).astype(np.float32)


def naive_top(logits, k):
    """Shown: the k largest probabilities; the rest of the mass spread evenly over the hidden classes."""
    flat = logits.reshape(-1, logits.shape[-1]).astype(np.float64)
    out = np.empty_like(flat)
    num_classes = flat.shape[1]
    for row, z in enumerate(flat):
        p = softmax(z)
        shown = np.argsort(-z, kind="stable")[:k]
        q = np.full(num_classes, (1 - p[shown].sum()) / (num_classes - k) if k < num_classes else 0.0)
        q[shown] = p[shown]
        out[row] = np.log(q)
    return out.reshape(logits.shape)


def naive_reported(logits, mask):
    """round:D or label as the reported vector with zeros read as the floor, in logs."""
    num_classes = logits.shape[-1]
    p = softmax(logits.astype(np.float64), axis=-1)
    reported = np.round(p, mask.value) if mask.kind == "round" else np.eye(num_classes)[logits.argmax(axis=-1)]
    return np.log(np.where(reported == 0, 10.0**-mask.value / (2 * num_classes), reported))


@pytest.mark.parametrize("k", [1, 2, 5, 6])
def test_top_k_matches_numpy(k):
    logits = small_logits(0)
    np.testing.assert_allclose(mask_logits(logits, parse_mask(f"top:{k}")), naive_top(logits, k), rtol=1e-10)


def test_top_k_keeps_phi_of_shown_labels_and_stays_finite_for_extreme_logits():
    logits = small_logits(1, scale=400.0)  # softmax underflows: probabilities of 0 and 1 in float64
    labels = np.random.default_rng(1).integers(0, 6, size=7)
    masked = mask_logits(logits, parse_mask("top:2"))
    assert np.isfinite(masked).all()
    shown = np.argsort(np.argsort(-logits, axis=-1, kind="stable"), axis=-1, kind="stable") < 2
    # the even completion never makes a hidden class look likelier than a shown one
    assert (np.where(shown, -np.inf, masked).max(axis=-1) <= np.where(shown, masked, np.inf).min(axis=-1)).all()
    label_shown = np.take_along_axis(shown, np.broadcast_to(labels[None, :, None, None], (3, 7, 2, 1)), -1)[..., 0]
    phi, masked_phi = logit_scale(logits, labels), logit_scale(masked, labels)
    np.testing.assert_allclose(masked_phi[label_shown], phi[label_shown], rtol=1e-5)
    np.testing.assert_allclose(logit_scale(mask_logits(logits, parse_mask("top:6")), labels), phi, rtol=1e-5)


@pytest.mark.parametrize("spec", ["round:0", "round:1", "round:3", "label"])
def test_rounding_and_label_match_numpy(spec):
    logits = small_logits(2)
    logits[0, 0, 0] = [30, 0, 0, 0, 0, 0]  # rounds to exactly 1 and 0
    mask = parse_mask(spec)
    masked = mask_logits(logits, mask)
    np.testing.assert_allclose(masked, naive_reported(logits, mask), rtol=1e-12)
    assert np.isfinite(logit_scale(masked, np.zeros(7, dtype=int))).all()


def test_label_only_phi_takes_two_values_set_by_correctness():
    logits = small_logits(3)
    labels = np.random.default_rng(3).integers(0, 6, size=7)
    phi = logit_scale(mask_logits(logits, parse_mask("label")), labels)
    correct = logits.argmax(axis=-1) == labels[None, :, None]
    floor = 1 / 12
    np.testing.assert_allclose(phi[correct], -np.log(5 * floor), rtol=1e-6)
    np.testing.assert_allclose(phi[~correct], np.log(floor / (1 + 4 * floor)), rtol=1e-6)


def test_parse_and_floor():
    assert parse_mask(" top:3 ") == Mask("top", 3) and parse_mask("round:0") == Mask("round", 0)
    assert parse_mask("label").spec == "label" and parse_mask("round:4").spec == "round:4"
    assert Mask("round", 2).floor(10) == pytest.approx(1e-2 / 20) and Mask("top", 2).floor(10) is None
    assert Mask("label").floor(4) == pytest.approx(1 / 8)


@pytest.mark.parametrize("spec", ["top:0", "round:-1", "top", "top:x", "round:1.5", "blur", "label:1", ""])
def test_malformed_masks(spec):
    with pytest.raises(UserError, match="--mask must be top:K"):
        parse_mask(spec)


def test_top_k_beyond_the_classes():
    check_mask(parse_mask("top:6"), 6)
    with pytest.raises(UserError, match="more classes than the models output \\(6\\)"):
        check_mask(parse_mask("top:7"), 6)
    with pytest.raises(UserError, match="more classes"):
        mask_logits(small_logits(4), parse_mask("top:7"))
