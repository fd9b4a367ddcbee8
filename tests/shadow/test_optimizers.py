"""train.optimizer and train.schedule against optax itself; the default SGD bit for bit as before."""

import dataclasses
import importlib.metadata
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lira_jax.config import TrainConfig
from lira_jax.shadow.hyperparameters import Hyperparameters
from lira_jax.shadow.optimizers import fingerprint, learning_rate_at, make_optimizer

FIXTURE = Path(__file__).parent / "fixtures" / "sgd_default_tiny_run"
LEARNING_RATE, WEIGHT_DECAY = 0.01, 0.05


def probe_params():
    rng = np.random.default_rng(0)
    return {"dense": {"kernel": jnp.asarray(rng.normal(size=(5, 3)), jnp.float32)}, "bias": jnp.ones(3, jnp.float32)}


def probe_grads(step: int, params):
    return jax.tree.map(lambda leaf: jnp.sin(leaf * (step + 2)) + 0.1 * step, params)


def hyperparameters(learning_rate=LEARNING_RATE, weight_decay=WEIGHT_DECAY) -> Hyperparameters:
    return Hyperparameters(*(jnp.float32(value) for value in (learning_rate, weight_decay, 0.0)), jnp.int32(1), 1.0)


def optax_reference(name: str, train: TrainConfig) -> optax.GradientTransformation:
    """optax's own optimizer, learning rate and weight decay as its documentation has them."""
    if name == "sgd":
        sgd = optax.sgd(LEARNING_RATE, momentum=train.momentum, nesterov=True)
        return optax.chain(optax.add_decayed_weights(WEIGHT_DECAY), sgd)
    coupled = {"adam": optax.adam, "rmsprop": optax.rmsprop, "adagrad": optax.adagrad}
    if name in coupled:  # L2 added to the gradient, as torch's Adam, RMSprop and Adagrad
        return optax.chain(optax.add_decayed_weights(WEIGHT_DECAY), coupled[name](LEARNING_RATE))
    return getattr(optax, name)(LEARNING_RATE, weight_decay=WEIGHT_DECAY)


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw", "lamb", "lion", "rmsprop", "adagrad"])
@pytest.mark.parametrize("clip", [0.0, 0.5])
def test_each_optimizer_steps_as_optax_does(name, clip):
    train = TrainConfig(optimizer=name, schedule="constant", grad_clip_norm=clip)
    ours = make_optimizer(train)
    reference = optax_reference(name, train)
    if clip:
        reference = optax.chain(optax.clip_by_global_norm(clip), reference)
    params = expected = probe_params()
    state, expected_state = ours.init(params), reference.init(expected)
    for step in range(4):
        params, state = ours.update(
            probe_grads(step, params), state, params, hyperparameters(), jnp.int32(step), jnp.int32(100), 0
        )
        updates, expected_state = reference.update(probe_grads(step, expected), expected_state, expected)
        expected = optax.apply_updates(expected, updates)
    for got, want in zip(jax.tree.leaves(params), jax.tree.leaves(expected), strict=True):
        np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-7)


def test_optimizer_parameters_reach_optax():
    """train.b1/b2/eps given: the same as optax with those values (rmsprop's b2 is optax's decay)."""
    cases = {
        "adamw": (dict(b1=0.5, b2=0.9, eps=1e-3), dict(b1=0.5, b2=0.9, eps=1e-3, weight_decay=0.0)),
        "lion": (dict(b1=0.8, b2=0.95), dict(b1=0.8, b2=0.95, weight_decay=0.0)),
        "rmsprop": (dict(b2=0.5, eps=1e-2), dict(decay=0.5, eps=1e-2)),
    }
    for name, (ours_settings, optax_settings) in cases.items():
        ours = make_optimizer(TrainConfig(optimizer=name, schedule="constant", weight_decay=0.0, **ours_settings))
        reference = getattr(optax, name)(LEARNING_RATE, **optax_settings)
        params = probe_params()
        stepped, _ = ours.update(
            probe_grads(0, params), ours.init(params), params, hyperparameters(weight_decay=0.0), jnp.int32(0), 10, 0
        )
        updates, _ = reference.update(probe_grads(0, params), reference.init(params), params)
        expected = optax.apply_updates(params, updates)
        for got, want in zip(jax.tree.leaves(stepped), jax.tree.leaves(expected), strict=True):
            np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-7)


def optax_schedule(train: TrainConfig, peak: float, total: int, warmup: int):
    warm = optax.linear_schedule(0.0, peak, warmup)
    after = {
        "cosine": optax.warmup_cosine_decay_schedule(0.0, peak, warmup, max(total, warmup + 1), 0.0),
        "constant": optax.join_schedules([warm, optax.constant_schedule(peak)], [warmup]),
        "linear": optax.join_schedules([warm, optax.linear_schedule(peak, 0.0, total - warmup)], [warmup]),
        "onecycle": optax.cosine_onecycle_schedule(total, peak, pct_start=warmup / total),
    }
    if train.schedule == "step":
        drops = {int(boundary * total): train.step_factor for boundary in train.step_boundaries}
        return optax.join_schedules(
            [warm, lambda step: optax.piecewise_constant_schedule(peak, drops)(step + warmup)], [warmup]
        )
    return after[train.schedule]


@pytest.mark.parametrize("schedule", ["cosine", "constant", "linear", "step", "onecycle"])
def test_each_schedule_is_optax_s(schedule):
    for warmup, total in [(0, 10), (2, 10), (4, 20)]:
        if schedule == "onecycle" and warmup == 0:
            continue  # optax's rise then has no steps; ours starts at the peak (tested below)
        train = TrainConfig(schedule=schedule, step_boundaries=(0.5, 0.8), step_factor=0.2)
        expected = optax_schedule(train, 0.3, total, warmup)
        for step in range(total + 3):
            got = learning_rate_at(train, jnp.int32(step), jnp.float32(0.3), jnp.int32(total), warmup)
            np.testing.assert_allclose(got, expected(step), rtol=1e-5, atol=1e-7, err_msg=f"{schedule} {step}")


def test_onecycle_without_warmup_falls_from_the_peak():
    train = TrainConfig(schedule="onecycle")
    rates = [float(learning_rate_at(train, jnp.int32(step), jnp.float32(1.0), jnp.int32(10), 0)) for step in range(11)]
    assert rates[0] == pytest.approx(1.0) and rates[10] == pytest.approx(1 / 25e4) and rates == sorted(rates)[::-1]


def test_fingerprint_tells_optimizers_apart():
    assert fingerprint(optax.adam(1e-3)) == fingerprint(optax.adam(1e-3))
    assert fingerprint(optax.adam(1e-3)) != fingerprint(optax.adam(2e-3))
    assert fingerprint(optax.adam(1e-3)) != fingerprint(optax.sgd(1e-3))


def test_the_default_run_is_bit_for_bit_mains(tiny_run):
    """The tiny run (conftest.TINY_RUN: default SGD, cosine schedule) gives the very scores that main's code
    gave before train.optimizer existed (tests/shadow/fixtures, made at 8cd2b12). XLA's CPU code differs
    between versions and processors, so elsewhere the fixture is not a reference."""
    made = json.loads(FIXTURE.with_suffix(".json").read_text())
    here = {name: importlib.metadata.version(name) for name in ("jax", "jaxlib", "flax", "optax")}
    lines = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "")
    if {**here, "cpu": cpu} != {key: made[key] for key in [*here, "cpu"]}:
        pytest.skip(f"the fixture was made with {made}, this is {here} on {cpu}")
    expected = np.load(FIXTURE.with_suffix(".npz"))
    np.testing.assert_array_equal(np.load(tiny_run / "scores.npy"), expected["scores"])
    np.testing.assert_array_equal(np.load(tiny_run / "epochs" / "1" / "scores.npy"), expected["epoch_1_scores"])


def test_default_sgd_is_the_old_step_exactly():
    """The old engine's step, written out (trace of grad + wd * params, then params - lr(t) * direction):
    the new Optimizer gives the same bits over a few jitted steps of the cosine schedule."""
    train = TrainConfig()
    optimizer = make_optimizer(train)
    trace = optax.trace(decay=train.momentum, nesterov=True)

    @jax.jit
    def old_step(params, state, step):
        grads = probe_grads(0, params)
        decayed = jax.tree.map(lambda grad, param: grad + WEIGHT_DECAY * param, grads, params)
        direction, state = trace.update(decayed, state)
        total, warmup = jnp.int32(10), 3
        decay_steps = jnp.maximum(total - warmup, 1)
        warming = jnp.float32(0.1) * step / max(warmup, 1)
        decayed_fraction = jnp.clip(step - warmup, 0, decay_steps) / decay_steps
        rate = jnp.where(step < warmup, warming, 0.1 * 0.5 * (1 + jnp.cos(jnp.pi * decayed_fraction)))
        return jax.tree.map(lambda param, step: param - rate * step, params, direction), state

    @jax.jit
    def new_step(params, state, step):
        grads = probe_grads(0, params)
        return optimizer.update(grads, state, params, hyperparameters(0.1), step, jnp.int32(10), 3)

    old = new = probe_params()
    old_state, new_state = trace.init(old), optimizer.init(new)
    for step in range(6):
        old, old_state = old_step(old, old_state, jnp.int32(step))
        new, new_state = new_step(new, new_state, jnp.int32(step))
    for got, want in zip(jax.tree.leaves((new, new_state)), jax.tree.leaves((old, old_state)), strict=True):
        np.testing.assert_array_equal(got, want)
    assert dataclasses.asdict(train)["optimizer"] == "sgd" and train.schedule == "cosine"


@pytest.mark.parametrize("name", ["adamw", "lamb", "adam"])
def test_per_model_rates_and_weight_decays_under_vmap_are_each_models_optax(name):
    """[vary]: the rate and weight decay are traced per-model values inside one vmapped update."""
    rates, decays = jnp.array([0.01, 0.003]), jnp.array([0.1, 0.001])
    ours = make_optimizer(TrainConfig(optimizer=name, schedule="constant"))
    params = jax.tree.map(lambda leaf: jnp.stack([leaf, 2 * leaf]), probe_params())
    state = jax.vmap(ours.init)(params)

    def one(params, state, rate, decay):
        grads = probe_grads(0, params)
        return ours.update(grads, state, params, hyperparameters(rate, decay), jnp.int32(0), jnp.int32(10), 0)

    stepped, _ = jax.vmap(one)(params, state, rates, decays)
    for model in range(2):
        alone = jax.tree.map(lambda leaf, model=model: leaf[model], params)
        if name == "adam":
            reference = optax.chain(optax.add_decayed_weights(float(decays[model])), optax.adam(float(rates[model])))
        else:
            reference = getattr(optax, name)(float(rates[model]), weight_decay=float(decays[model]))
        updates, _ = reference.update(probe_grads(0, alone), reference.init(alone), alone)
        expected = optax.apply_updates(alone, updates)
        got = jax.tree.map(lambda leaf, model=model: leaf[model], stepped)
        for got_leaf, want in zip(jax.tree.leaves(got), jax.tree.leaves(expected), strict=True):
            np.testing.assert_allclose(got_leaf, want, rtol=2e-6, atol=1e-7)
