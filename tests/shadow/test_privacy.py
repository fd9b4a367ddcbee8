import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tiny_settings
from run_folders import reduced_noise, write_dp_canary_run
from test_engine import tiny_problem, train

from lira_jax import config as config_lib
from lira_jax.config import Config, TrainConfig
from lira_jax.errors import UserError
from lira_jax.shadow.models import CNN
from lira_jax.shadow.privacy import Privacy, epsilon, private_gradient, sampling_probability
from lira_jax.train import main


def quadratic_loss(params, example, target):
    prediction = jnp.dot(params["w"], example) + params["b"]
    return 0.5 * jnp.square(prediction - target), prediction


def quadratic_loss_wide(params, example, target):
    return 0.5 * jnp.square(jnp.dot(params["w"], example) - target), target


def test_private_gradient_clips_each_example_then_averages():
    """Against a plain loop: per-example gradients one by one, clipped with NumPy, summed, divided by B."""
    rng = np.random.default_rng(0)
    examples = rng.normal(size=(6, 3)).astype(np.float32) * np.array([[0.1], [1], [5], [0.2], [3], [10]], np.float32)
    targets = rng.normal(size=6).astype(np.float32)
    params = {"w": jnp.asarray(rng.normal(size=3), jnp.float32), "b": jnp.float32(0.5)}
    clip = 1.0
    expected = {"w": np.zeros(3), "b": 0.0}
    for example, target in zip(examples, targets, strict=True):
        residual = float(np.dot(params["w"], example) + params["b"] - target)
        grad_w, grad_b = residual * example, residual
        norm = np.sqrt(np.sum(grad_w**2) + grad_b**2)
        scale = min(1.0, clip / norm)
        expected["w"] += scale * grad_w / len(targets)
        expected["b"] += scale * grad_b / len(targets)
    got, losses, predictions = private_gradient(
        quadratic_loss, params, (jnp.asarray(examples), jnp.asarray(targets)), jax.random.key(0), Privacy(0.0, clip)
    )
    np.testing.assert_allclose(got["w"], expected["w"], rtol=1e-5)
    np.testing.assert_allclose(got["b"], expected["b"], rtol=1e-5)
    assert losses.shape == (6,) and predictions.shape == (6,)


def test_private_gradient_noise_has_the_stated_scale():
    params = {"w": jnp.zeros(20_000, jnp.float32)}
    examples = jnp.zeros((4, 20_000), jnp.float32)
    targets = jnp.zeros(4, jnp.float32)
    got, _, _ = private_gradient(quadratic_loss_wide, params, (examples, targets), jax.random.key(1), Privacy(2.0, 0.5))
    assert np.std(got["w"]) == pytest.approx(2.0 * 0.5 / 4, rel=0.03)


def test_dp_sgd_without_noise_or_clipping_is_plain_sgd():
    """Noise 0 and a clip norm no gradient reaches: DP-SGD's per-example path equals the batch gradient."""
    images, labels, keep = tiny_problem()
    model = CNN(3, width=4, matmul_conv=True, norm="group")
    config = TrainConfig(epochs=1, batch_size=8)
    plain, _ = train(model, config, keep, images, labels, np.arange(2))
    private, _ = train(model, config, keep, images, labels, np.arange(2), privacy=Privacy(0.0, 1e6))
    for got, expected in zip(jax.tree.leaves(private), jax.tree.leaves(plain), strict=True):
        np.testing.assert_allclose(got, expected, rtol=2e-4, atol=2e-5)


def test_sampling_probability_rounds_up_to_three_digits():
    assert sampling_probability(64, 898) == 0.0713  # 0.071269...
    assert sampling_probability(16, 80) == 0.2
    assert sampling_probability(64, 32) == 1.0


def test_epsilon_falls_with_noise_and_rises_with_steps():
    assert epsilon(0.0, 0.01, 100, 1e-5) == np.inf
    values = [epsilon(sigma, 0.01, 1000, 1e-5) for sigma in (0.5, 1.0, 2.0, 4.0)]
    assert values == sorted(values, reverse=True) and values[-1] > 0
    assert epsilon(1.0, 0.01, 100, 1e-5) < epsilon(1.0, 0.01, 1000, 1e-5)


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        (["train.dp_noise_multiplier=-1"], r"dp_noise_multiplier must be a finite number in \[0, ∞\)"),
        (["train.dp_clip_norm=0"], r"dp_clip_norm must be a finite number in \(0, ∞\)"),
        (["train.dp_delta=1"], r"dp_delta must be a finite number in \(0, 1\)"),
        (["train.dp_sgd=true"], "model.norm = 'group'"),
        (["train.dp_sgd=true", "model.norm=group", "train.augment=['mixup:0.2']"], "mixup"),
    ],
)
def test_bad_privacy_settings(assignment, message):
    with pytest.raises(UserError, match=message):
        config_lib.with_overrides(Config(), assignment)


def test_a_dp_sgd_run_reports_epsilon_per_model(tmp_path):
    out = tmp_path / "dp"
    settings = tiny_settings(
        "train.num_models=2",
        "train.epochs=1",
        "model.norm=group",
        "train.batch_size=16",
        "train.dp_sgd=true",
        "train.dp_noise_multiplier=1.5",
    )
    assert main(["--out", str(out), "--quiet", "--no-attack", *settings]) == 0
    records = json.loads((out / "models.json").read_text())["models"]
    for record in records:
        steps = -(-max(other["members"] for other in records) // 16)
        assert record["dp_epsilon"] == pytest.approx(
            epsilon(1.5, sampling_probability(16, record["members"]), steps, 1e-5)
        )
        assert record["dp_epsilon"] >= epsilon(1.5, 16 / record["members"], steps, 1e-5)
        assert record["dp_delta"] == 1e-5


def test_the_broken_dp_sgd_of_the_audit_fixture_adds_a_tenth_of_the_noise():
    """tests/run_folders.reduced_noise: the engine's noise divided, the accountant's config untouched."""
    params = {"w": jnp.zeros(20_000, jnp.float32)}
    examples, targets = jnp.zeros((4, 20_000), jnp.float32), jnp.zeros(4, jnp.float32)
    broken = reduced_noise(private_gradient, 10.0)
    got, _, _ = broken(quadratic_loss_wide, params, (examples, targets), jax.random.key(1), Privacy(2.0, 0.5))
    assert np.std(got["w"]) == pytest.approx(2.0 * 0.5 / 4 / 10, rel=0.03)


def test_a_broken_dp_canary_run_is_accounted_for_the_noise_it_was_told(tmp_path):
    """tests/run_folders.write_dp_canary_run: canaries recorded, epsilon as for the full noise multiplier."""
    out = write_dp_canary_run(tmp_path / "broken", num_models=4, canaries=20, epochs=1)
    record = json.loads((out / "canaries.json").read_text())
    assert record["indices"] == list(range(200, 220)) and np.load(out / "keep.npy").shape == (4, 220)
    records = json.loads((out / "models.json").read_text())["models"]
    steps = -(-max(model["members"] for model in records) // 16)
    for model in records:
        assert model["done"] and model["dp_sampling"] == "poisson" and model["dp_overflow_examples"] == 0
        assert model["dp_epsilon"] == epsilon(1.0, sampling_probability(16, model["members"]), steps, 1e-5)
