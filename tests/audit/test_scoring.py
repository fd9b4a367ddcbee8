"""audit/inputs/phi.py and audit/attacks/lira/lira.py: logit scaling and LiRA, against plain loops (DESIGN.md)."""

import numpy as np
import pytest
from scipy.special import log_softmax, logsumexp
from scipy.stats import norm

from lira_jax.audit import streaming
from lira_jax.audit.attacks.equalise import drop_hash
from lira_jax.audit.attacks.lira import lira as lira_module
from lira_jax.audit.attacks.lira import shadow_sets
from lira_jax.audit.attacks.lira.lira import LIRA_VARIANTS, LiraOptions, lira, lira_scores
from lira_jax.audit.inputs import phi as numpy_phi
from lira_jax.audit.inputs.phi import logit_scale
from lira_jax.audit.streaming import ModelSubset
from lira_jax.errors import UserError
from lira_jax.shadow import phi

# ---------------------------------------------------------------------------------------------------
# Reference implementation: DESIGN.md's formulas, one target and one example at a time.


def naive_sets(keep, target, n, counts):
    """(IN models, OUT models) of target on example n; equalised: one model of the larger set dropped, the
    j-th in index order with j = drop_hash(0, target, n) mod its size (DESIGN.md, "Scoring semantics")."""
    ins = [m for m in range(keep.shape[0]) if m != target and keep[m, n]]
    outs = [m for m in range(keep.shape[0]) if m != target and not keep[m, n]]
    if counts == "equalised" and len(ins) != len(outs):
        larger = ins if len(ins) > len(outs) else outs
        larger.pop(int(drop_hash(0, np.array([target]), np.array([n]))[0, 0] % np.uint64(len(larger))))
    return ins, outs


def naive_lira(scores, keep, target, online, fixed_variance, centre="median", two_sided=False, counts="equalised"):
    """float64[N]: the score of every example for one target, written plainly."""
    num_models, num_examples, num_views = scores.shape
    scores = scores.astype(np.float64)
    centre_of = np.median if centre == "median" else np.mean
    shape = (num_examples, num_views)
    mu_in, mu_out, sd_in, sd_out, var_in, var_out = (np.zeros(shape) for _ in range(6))
    spread = np.zeros(num_examples, dtype=bool)  # the sets a fixed σ is taken over: 2 shadows in each
    for n in range(num_examples):
        ins, outs = naive_sets(keep, target, n, counts)
        spread[n] = len(outs) >= 2 and (len(ins) >= 2 or not online)
        for v in range(num_views):
            if online:
                mu_in[n, v] = centre_of(scores[ins, n, v])
                sd_in[n, v] = max(np.std(scores[ins, n, v]), 1e-6)
                var_in[n, v] = np.var(scores[ins, n, v])
            mu_out[n, v] = centre_of(scores[outs, n, v])
            sd_out[n, v] = max(np.std(scores[outs, n, v]), 1e-6)
            var_out[n, v] = np.var(scores[outs, n, v])
    if fixed_variance:
        variance = (var_in + var_out) / 2 if online else var_out
        sigma = np.sqrt(np.mean(variance[spread])) if spread.any() else 0.0  # since issue 25: sets of 2 or more
        sd_in[:] = sd_out[:] = max(sigma, 1e-6)
    x = scores[target]
    if online:
        per_view = norm.logpdf(x, mu_in, sd_in) - norm.logpdf(x, mu_out, sd_out)
    elif two_sided:
        per_view = -norm.logpdf(x, mu_out, sd_out)
    else:
        per_view = norm.logcdf((x - mu_out) / sd_out)
    return per_view.mean(axis=-1)


def random_run(rng, num_models, num_examples, num_views, balanced=True, ties=False, signal=1.0):
    if balanced:
        keep = np.argsort(rng.random((num_models, num_examples)), axis=0) < num_models // 2
    else:
        keep = rng.random((num_models, num_examples)) < 0.5
        keep[:2] = True  # every example has at least two IN and two OUT models
        keep[2:4] = False
    scores = rng.normal(size=(num_models, num_examples, num_views)) + signal * keep[:, :, None]
    scores += rng.normal(0, 3, size=(1, num_examples, 1))
    if ties:
        scores = np.round(scores * 2) / 2
    return keep, scores.astype(np.float32)


def assert_scores_close(actual, expected):
    np.testing.assert_allclose(actual, expected, rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------------------------------------------
# Logit scaling


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_logit_scale_matches_float64_log_softmax(dtype):
    rng = np.random.default_rng(0)
    logits = (rng.normal(0, 4, size=(3, 50, 2, 10))).astype(dtype)
    labels = rng.integers(0, 10, size=50).astype(np.int32)
    phi = logit_scale(logits, labels)
    assert phi.dtype == np.float32 and phi.shape == (3, 50, 2)
    log_p = log_softmax(logits.astype(np.float64), axis=-1)
    log_p_y = np.take_along_axis(log_p, np.broadcast_to(labels[:, None], (3, 50, 2))[..., None], -1)[..., 0]
    expected = log_p_y - np.log1p(-np.exp(log_p_y))
    np.testing.assert_allclose(phi, expected, rtol=2e-6, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_logit_scale_is_exact_for_extreme_logits(dtype):
    big = 6e4 if dtype == np.float16 else 1e4
    logits = np.array([[big, 0, 0], [-big, 0, 0], [0, big, -big], [big, big, 0], [-big, -big, -big]], dtype=dtype)
    labels = np.zeros(5, dtype=np.int64)
    phi = logit_scale(logits, labels)
    big = float(np.asarray(big, dtype=dtype))
    expected = [big - np.log(2), -big - np.log(2), -big, 0.0, -np.log(2)]
    assert np.isfinite(phi).all()
    np.testing.assert_allclose(phi, expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(
        logit_scale(logits.astype(np.float64), labels),
        logits[:, 0].astype(np.float64) - logsumexp(logits[:, 1:].astype(np.float64), axis=1),
        rtol=1e-6,
    )


def test_logit_scale_label_layouts_and_jax():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(4, 6, 3, 5)).astype(np.float32)
    labels = rng.integers(0, 5, size=6)
    full = logit_scale(logits, labels)
    np.testing.assert_array_equal(full, logit_scale(logits, labels[None, :, None]))
    np.testing.assert_array_equal(full[1], logit_scale(logits[1], labels))
    np.testing.assert_array_equal(full[1, :, 0], logit_scale(logits[1, :, 0], labels))

    import jax

    from_jax = jax.jit(phi.logit_scale_jax)(logits, labels[None, :, None].astype(np.int32))
    np.testing.assert_allclose(np.asarray(from_jax), full, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(logit_scale(jax.numpy.asarray(logits), labels)), full, rtol=1e-5, atol=1e-5)
    extreme = jax.numpy.asarray([[1e4, 0.0, -1e4]], dtype=jax.numpy.float32)
    assert np.allclose(np.asarray(phi.logit_scale_jax(extreme, np.array([0]))), 1e4)


def test_logit_scale_in_pieces(monkeypatch):
    """Large inputs are computed a piece at a time, splitting leading axes as far as needed."""
    rng = np.random.default_rng(8)
    logits = rng.normal(size=(3, 7, 4, 5)).astype(np.float16)
    labels = rng.integers(0, 5, 7)
    whole = logit_scale(logits, labels)
    for chunk_bytes in (8 * 5 * 3, 1):
        monkeypatch.setattr(numpy_phi, "PIECE_BYTES", chunk_bytes)
        np.testing.assert_array_equal(logit_scale(logits, labels), whole)
        np.testing.assert_array_equal(logit_scale(logits, np.broadcast_to(labels[None, :, None], (3, 7, 4))), whole)


@pytest.mark.parametrize(
    "logits, labels",
    [
        (np.zeros((3, 1)), np.zeros(3, dtype=int)),  # one class
        (np.zeros((3, 4)), np.array([0, 4, 1])),  # label out of range
        (np.array([[0.0, np.nan]]), np.array([0])),
        (np.array([[0.0, np.inf]]), np.array([0])),
        (np.zeros((3, 4)), np.zeros(5, dtype=int)),  # shape mismatch
        (np.zeros((3, 4)), np.zeros(3)),  # float labels
    ],
)
def test_logit_scale_bad_input(logits, labels):
    with pytest.raises(UserError):
        logit_scale(logits, labels)


# ---------------------------------------------------------------------------------------------------
# LiRA


@pytest.mark.parametrize("counts", ["equalised", "raw"])
@pytest.mark.parametrize("balanced, ties", [(True, False), (True, True), (False, False), (False, True)])
def test_lira_every_variant_matches_per_target_loop(balanced, ties, counts):
    rng = np.random.default_rng(2)
    keep, scores = random_run(rng, 9, 23, 3, balanced=balanced, ties=ties)
    variants = {
        **LIRA_VARIANTS,
        "mean_online": LiraOptions(centre="mean"),
        "mean_offline_fixed": LiraOptions(online=False, centre="mean", fixed_variance=True),
        "two_sided_fixed": LiraOptions(online=False, two_sided=True, fixed_variance=True),
    }
    results = lira_scores(scores, keep, None, variants, counts=counts, chunk_examples=4, workers=2)
    for target in range(9):
        for name, options in variants.items():
            expected = naive_lira(
                scores, keep, target, options.online, options.fixed_variance, options.centre, options.two_sided, counts
            )
            assert results[name].dtype == np.float32 and results[name].shape == (9, 23)
            assert_scores_close(results[name][target], expected)


@pytest.mark.parametrize("counts", ["equalised", "raw"])
@pytest.mark.parametrize("num_models", [4, 5, 6, 7])
def test_lira_small_and_odd_model_counts(num_models, counts):
    """Set sizes 1 and 2 after taking the target out, odd and even: the O(1) leave-one-out median."""
    rng = np.random.default_rng(num_models)
    keep, scores = random_run(rng, num_models, 15, 2, ties=True)
    results = lira_scores(scores, keep, None, LIRA_VARIANTS, counts=counts)
    for target in range(num_models):
        for name, options in LIRA_VARIANTS.items():
            expected = naive_lira(
                scores, keep, target, options.online, options.fixed_variance, two_sided=options.two_sided, counts=counts
            )
            assert_scores_close(results[name][target], expected)


def test_fixed_variance_first_pass_equals_deferred(monkeypatch):
    rng = np.random.default_rng(3)
    keep, scores = random_run(rng, 8, 40, 2)
    deferred = lira_scores(scores, keep, [0, 3, 5], LIRA_VARIANTS, chunk_examples=7)
    monkeypatch.setattr(lira_module, "DEFERRED_BYTES", 0)
    two_pass = lira_scores(scores, keep, [0, 3, 5], LIRA_VARIANTS, chunk_examples=7)
    for name in LIRA_VARIANTS:
        assert_scores_close(two_pass[name], deferred[name])


def test_targets_memmaps_and_model_subsets_agree(tmp_path):
    rng = np.random.default_rng(4)
    keep, scores = random_run(rng, 10, 31, 2)
    np.save(tmp_path / "scores.npy", scores)
    mapped = np.load(tmp_path / "scores.npy", mmap_mode="r")
    everything = lira_scores(scores, keep)
    some = lira_scores(mapped, keep, [7, 2], chunk_examples=5, workers=2)
    for name in everything:
        assert_scores_close(some[name], everything[name][[7, 2]])
    models = [0, 2, 3, 5, 6, 8, 9]
    subset = lira_scores(ModelSubset(mapped, models), keep[models], [1, 4], chunk_examples=3)
    direct = lira_scores(scores[models], keep[models], [1, 4])
    for name in direct:
        np.testing.assert_array_equal(subset[name], direct[name])
    single = lira(mapped, keep, [2], online=False, fixed_variance=True)
    assert_scores_close(single, everything["lira_offline_fixed_var"][[2]])


def test_blocks_threads_and_chunks_do_not_change_results(tmp_path, monkeypatch):
    rng = np.random.default_rng(9)
    keep, scores = random_run(rng, 8, 50, 3, balanced=False)
    np.save(tmp_path / "scores.npy", scores)
    mapped = np.load(tmp_path / "scores.npy", mmap_mode="r")
    reference = lira_scores(scores, keep, variants=LIRA_VARIANTS, workers=1)
    monkeypatch.setattr(streaming, "BLOCK_BYTES", 8 * 3 * 4 * 5)  # blocks of 5 examples, on 3 threads
    monkeypatch.setattr(shadow_sets, "SET_CHUNK_BYTES", 1)  # and sets of one example at a time
    for chunk in (1, 2, 7):
        threaded = lira_scores(mapped, keep, variants=LIRA_VARIANTS, chunk_examples=chunk, workers=3)
        for name in LIRA_VARIANTS:
            np.testing.assert_allclose(threaded[name], reference[name], rtol=2e-7, atol=1e-7)


def test_reading_a_memmap_keeps_memory_small(tmp_path):
    """Scoring reads memmaps with pread: the process never maps the file's pages."""
    rng = np.random.default_rng(5)
    keep, scores = random_run(rng, 8, 200, 3)
    np.save(tmp_path / "scores.npy", scores)
    mapped = np.load(tmp_path / "scores.npy", mmap_mode="r")
    for start, stop in [(0, 200), (13, 57), (199, 200)]:
        np.testing.assert_array_equal(streaming.read_examples(mapped, start, stop), scores[:, start:stop])
        np.testing.assert_array_equal(
            streaming.read_examples(ModelSubset(mapped, [5, 1]), start, stop), scores[[5, 1], start:stop]
        )


def test_lira_bad_input():
    rng = np.random.default_rng(6)
    keep, scores = random_run(rng, 6, 10, 2)
    with pytest.raises(UserError, match="keep must be bool"):
        lira_scores(scores, keep[:, :9])
    with pytest.raises(UserError, match="keep must be bool"):
        lira_scores(scores, keep.astype(int))
    with pytest.raises(UserError, match="scores must be"):
        lira_scores(scores[..., 0], keep)
    with pytest.raises(UserError, match="at least 2 models"):
        lira_scores(scores[:1], keep[:1])
    with pytest.raises(UserError, match="targets"):
        lira_scores(scores, keep, [6])
    with pytest.raises(UserError, match="targets"):
        lira_scores(scores, keep, [1, 1])
    with pytest.raises(UserError, match="unknown LiRA"):
        lira_scores(scores, keep, variants=["lira_sideways"])
    with pytest.raises(UserError, match="two_sided"):
        LiraOptions(online=True, two_sided=True)
    for bad in (np.nan, np.inf):
        broken = scores.copy()
        broken[4, 7, 1] = bad
        with pytest.raises(UserError, match=r"NaN or infinite.*model 4, example 7"):
            lira_scores(broken, keep, chunk_examples=3)


def test_missing_shadows_are_named():
    rng = np.random.default_rng(7)
    keep, scores = random_run(rng, 6, 10, 2)
    keep[:, 3] = False
    keep[0, 3] = True  # example 3 is IN only model 0
    with pytest.raises(UserError, match="IN shadow model for every example, but example 3 has none besides target 0"):
        lira_scores(scores, keep, variants=["lira_online"])
    offline = lira_scores(scores, keep, variants=["lira_offline"], counts="raw")["lira_offline"]  # needs no IN
    assert_scores_close(offline[0], naive_lira(scores, keep, 0, False, False, counts="raw"))
    keep[:, 5] = True
    with pytest.raises(UserError, match=r"OUT shadow.*example 5.*\(6 of 6 targets"):
        lira_scores(scores, keep, variants=["lira_offline"])
