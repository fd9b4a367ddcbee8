"""train.dp_sampling = "poisson": the sampler, the masked DP-SGD gradient, its accounting and its checks."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tiny_settings
from test_canaries import assert_refused_in_one_line

from lira_jax import config as config_lib
from lira_jax.config import Config
from lira_jax.errors import UserError
from lira_jax.shadow.poisson import buffer_size, poisson_batch
from lira_jax.shadow.privacy import Privacy, privacy_records, private_gradient
from lira_jax.train import main


def test_the_buffer_holds_eight_standard_deviations_above_the_batch():
    assert buffer_size(64, 898) == 126  # ceil(64 + 8 sqrt(64 (1 - 64/898)))
    assert buffer_size(64, 32) == 32  # q = 1: every member, no more
    assert buffer_size(16, 20) == 20  # never more slots than members


def test_poisson_samples_have_the_expected_batch_size_and_only_members():
    """2000 seeded samples of 500 members out of 800, batch 50 (q = 0.1): size mean 50 and variance
    n q (1 - q) = 45 within a few standard errors; each member in about q of them, no non-member ever."""
    rng = np.random.default_rng(0)
    keep_row = jnp.asarray(rng.permutation(800) < 500)
    slots = buffer_size(50, 500)
    keys = jax.random.split(jax.random.key(0), 2000)
    sample = jax.vmap(poisson_batch, in_axes=(0, None, None, None, None))
    indices, masks, overflow = sample(keys, keep_row, jnp.int32(500), 50, slots)
    sizes = np.asarray(masks.sum(axis=1))
    assert abs(sizes.mean() - 50) < 4 * np.sqrt(45 / 2000)
    assert 45 * 0.85 < sizes.var() < 45 * 1.15
    assert not np.asarray(overflow).any()
    chosen = np.zeros(800)
    for row, mask in zip(np.asarray(indices), np.asarray(masks), strict=True):
        picked = row[mask]
        assert (np.diff(picked) > 0).all()  # distinct, in increasing order
        chosen[picked] += 1
    assert not chosen[~np.asarray(keep_row)].any()
    assert abs(chosen[np.asarray(keep_row)].mean() / 2000 - 0.1) < 0.002


def test_a_sample_larger_than_its_buffer_counts_the_dropped_examples():
    indices, mask, overflow = poisson_batch(jax.random.key(1), jnp.ones(100, bool), jnp.int32(100), 60, 10)
    assert int(mask.sum()) == 10 and int(overflow) > 0 and int(overflow) + 10 > 40


def quadratic_loss(params, example, target):
    prediction = jnp.dot(params["w"], example)
    return 0.5 * jnp.square(prediction - target), prediction


def test_masked_examples_add_nothing_and_the_sum_is_divided_by_the_expected_size():
    rng = np.random.default_rng(2)
    examples = jnp.asarray(rng.normal(size=(6, 3)) * 4, jnp.float32)
    targets = jnp.asarray(rng.normal(size=6), jnp.float32)
    params = {"w": jnp.asarray(rng.normal(size=3), jnp.float32)}
    mask = jnp.asarray([True, False, True, True, False, False])
    privacy = Privacy(0.0, 1.0)
    got, _, _ = private_gradient(quadratic_loss, params, (examples, targets), jax.random.key(0), privacy, (mask, 4))
    kept, _, _ = private_gradient(quadratic_loss, params, (examples[mask], targets[mask]), jax.random.key(0), privacy)
    np.testing.assert_allclose(got["w"], kept["w"] * 3 / 4, rtol=1e-6)  # the kept 3 summed, over 4 expected


def test_poisson_and_shuffle_account_the_same_event_and_say_which_it_is():
    keep = np.arange(4)[:, None] % 2 == np.arange(200)[None, :] % 2  # 100 members each
    records = {
        sampling: privacy_records(
            config_lib.with_overrides(
                Config(), ["train.dp_sgd=true", "model.norm=group", f"train.dp_sampling={sampling}"]
            ),
            keep,
            np.arange(4),
            10,
        )
        for sampling in ("shuffle", "poisson")
    }
    for shuffled, sampled in zip(records["shuffle"], records["poisson"], strict=True):
        assert shuffled["dp_epsilon"] == sampled["dp_epsilon"] and np.isfinite(sampled["dp_epsilon"])
        assert (shuffled["dp_sampling"], sampled["dp_sampling"]) == ("shuffle", "poisson")


def test_a_poisson_dp_run_records_its_sampler_and_no_overflow(tmp_path):
    out = tmp_path / "dp"
    settings = tiny_settings(
        "train.num_models=2", "train.epochs=1", "model.norm=group", "train.batch_size=16", "train.dp_sgd=true",
        "train.dp_sampling=poisson",
    )  # fmt: skip
    assert main(["--out", str(out), "--quiet", "--no-attack", *settings]) == 0
    for record in json.loads((out / "models.json").read_text())["models"]:
        assert record["dp_sampling"] == "poisson" and record["dp_overflow_examples"] == 0
        assert np.isfinite(record["dp_epsilon"]) and record["done"]
    assert np.isfinite(np.load(out / "scores.npy")).all()


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        ("train.dp_sampling=poisson", "train.dp_sampling = 'poisson' needs train.dp_sgd = true"),
        ("train.dp_sampling=uniform", "train.dp_sampling must be one of shuffle, poisson"),
    ],
)
def test_bad_sampling_is_one_line_and_writes_nothing(tmp_path, capsys, assignment, message):
    assert_refused_in_one_line(tmp_path, capsys, assignment, message)
    with pytest.raises(UserError, match=message):
        config_lib.with_overrides(Config(), [assignment])
