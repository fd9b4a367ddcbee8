import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lira_jax.config import Config, TrainConfig, VaryConfig
from lira_jax.shadow import engine, gradients, inference, objectives, stepping
from lira_jax.shadow.hyperparameters import draw
from lira_jax.shadow.models import CNN
from lira_jax.shadow.optimizers import make_optimizer

SHAPE = (8, 8, 1)


def tiny_problem(num_models=4, num_examples=40, seed=0):
    rng = np.random.default_rng(seed)
    images = jnp.asarray(rng.normal(size=(num_examples, *SHAPE)), jnp.float32)
    labels = jnp.asarray(rng.integers(0, 3, num_examples), jnp.int32)
    keep = np.argsort(rng.uniform(size=(num_models, num_examples)), axis=0) < num_models // 2
    return images, labels, keep


def train(model, config, keep, images, labels, model_indices, vary=None, privacy=None, loop_groups=0, host_mesh=None):
    """Trains `model_indices` for config.epochs: scanned epochs, or with `host_mesh` host-stepped ones."""
    steps = engine.steps_per_epoch(keep, config.batch_size)
    optimizer = make_optimizer(config)
    keys = engine.model_keys(config.seed, model_indices)
    states = engine.init_states(model, optimizer, keys, SHAPE)
    fields = dict(
        num_classes=3,
        batch_size=config.batch_size,
        steps=steps,
        warmup_steps=round(config.warmup_epochs * steps),
        augmentations=(),
        privacy=privacy,
        epochs_vary=vary is not None and bool(vary.epochs),
    )
    hyperparameters = draw(Config(train=config, vary=vary or VaryConfig()), model_indices)
    rows = jnp.asarray(keep[model_indices])
    if host_mesh is None:
        train_epoch = engine.make_train_epoch(model, optimizer, loop_groups=loop_groups, **fields)
    else:
        host_epoch = stepping.make_host_epoch(model, optimizer, mesh=host_mesh, **fields)
        arguments = (states, keys, hyperparameters, jnp.int32(0), rows, images, labels)
        train_epoch = host_epoch.lower(*arguments).compile()
    for epoch in range(config.epochs):
        states, metrics = train_epoch(states, keys, hyperparameters, jnp.int32(epoch), rows, images, labels)
    return states, metrics


def test_model_axis_of_one_trains_like_a_plain_single_model():
    """The vmapped, scanned, jitted epoch against a plain loop of single-model steps (same key scheme)."""
    images, labels, keep = tiny_problem(num_models=2)
    keep = keep[:1]
    model = CNN(3, width=4)
    config = TrainConfig(epochs=2, batch_size=8, learning_rate=0.05, label_smoothing=0.1)
    states, _ = train(model, config, keep, images, labels, np.array([0]))

    steps = engine.steps_per_epoch(keep, config.batch_size)
    warmup = round(config.warmup_epochs * steps)  # optax's own SGD and schedule: the obviously-correct reference
    schedule = optax.warmup_cosine_decay_schedule(0.0, config.learning_rate, warmup, config.epochs * steps, 0.0)
    optimizer = optax.chain(
        optax.add_decayed_weights(config.weight_decay), optax.sgd(schedule, momentum=config.momentum, nesterov=True)
    )
    key = engine.model_keys(config.seed, np.array([0]))[0]
    variables = model.init(engine._init_key(key), jnp.zeros((1, *SHAPE)), train=False)
    params, batch_stats = variables["params"], variables["batch_stats"]
    opt_state = optimizer.init(params)
    members = np.flatnonzero(keep[0])
    for epoch in range(config.epochs):
        order_key, step_key = jax.random.split(jax.random.fold_in(jax.random.fold_in(key, 1), epoch))
        order = np.argsort(np.asarray(jax.random.uniform(order_key, (len(labels),))) + np.where(keep[0], 0.0, 2.0))
        assert set(order[: len(members)]) == set(members)
        for step in range(steps):
            indices = order[(step * config.batch_size + np.arange(config.batch_size)) % len(members)]
            _, dropout_key = jax.random.split(jax.random.fold_in(step_key, step))
            targets = optax.smooth_labels(jax.nn.one_hot(labels[indices], 3), config.label_smoothing)

            def loss_fn(params, batch_stats, indices=indices, targets=targets, dropout_key=dropout_key):
                logits, updates = model.apply(
                    {"params": params, "batch_stats": batch_stats},
                    images[indices],
                    train=True,
                    mutable=["batch_stats"],
                    rngs={"dropout": dropout_key},
                )
                return optax.softmax_cross_entropy(logits, targets).mean(), updates["batch_stats"]

            grads, batch_stats = jax.grad(loss_fn, has_aux=True)(params, batch_stats)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            params = optax.apply_updates(params, updates)

    for got, expected in zip(jax.tree.leaves(states.params), jax.tree.leaves(params), strict=True):
        np.testing.assert_allclose(got[0], expected, rtol=1e-4, atol=1e-5)
    for got, expected in zip(jax.tree.leaves(states.batch_stats), jax.tree.leaves(batch_stats), strict=True):
        np.testing.assert_allclose(got[0], expected, rtol=1e-4, atol=1e-5)


def test_a_model_trains_the_same_in_any_chunk():
    """Randomness follows the global model index: models 2 and 3 alone equal rows 2 and 3 of all four."""
    images, labels, keep = tiny_problem()
    model = CNN(3, width=4, matmul_conv=True)
    config = TrainConfig(epochs=1, batch_size=8)
    together, _ = train(model, config, keep, images, labels, np.arange(4))
    alone, _ = train(model, config, keep, images, labels, np.array([2, 3]))
    fresh = engine.init_states(model, optax.sgd(0.1), engine.model_keys(0, np.array([3])), SHAPE)
    first = engine.init_states(model, optax.sgd(0.1), engine.model_keys(0, np.arange(4)), SHAPE)
    for got, expected in zip(jax.tree.leaves(fresh.params), jax.tree.leaves(first.params), strict=True):
        np.testing.assert_array_equal(got[0], expected[3])
    for got, expected in zip(jax.tree.leaves(alone.params), jax.tree.leaves(together.params), strict=True):
        np.testing.assert_allclose(got, expected[2:], rtol=1e-5, atol=1e-6)


def test_models_looped_inside_the_step_train_as_vmapped_ones():
    """train.model_batching = "loop" (lax.map over each group's models) computes what vmap computes."""
    images, labels, keep = tiny_problem()
    model = CNN(3, width=4, matmul_conv=True)
    config = TrainConfig(epochs=1, batch_size=8)
    vmapped, vmapped_metrics = train(model, config, keep, images, labels, np.arange(4))
    looped, looped_metrics = train(model, config, keep, images, labels, np.arange(4), loop_groups=2)
    for got, expected in zip(jax.tree.leaves(looped), jax.tree.leaves(vmapped), strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(looped_metrics.loss, vmapped_metrics.loss, rtol=1e-5)


def test_host_stepped_epochs_train_as_scanned_ones():
    """train.model_batching = "host" (steps from the host, each device's models unrolled, native convolutions)
    computes what the scanned, vmapped epoch computes, with varying epochs and on every device."""
    images, labels, keep = tiny_problem()
    config = TrainConfig(epochs=2, batch_size=8)
    vary = VaryConfig(epochs=(1, 2))
    mesh = engine.model_mesh(4)
    scanned, scanned_metrics = train(
        CNN(3, width=4, matmul_conv=True), config, keep, images, labels, np.arange(4), vary
    )
    host, host_metrics = train(CNN(3, width=4), config, keep, images, labels, np.arange(4), vary, host_mesh=mesh)
    for got, expected in zip(jax.tree.leaves(host), jax.tree.leaves(scanned), strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(host_metrics.loss, scanned_metrics.loss, rtol=1e-5)
    np.testing.assert_allclose(host_metrics.accuracy, scanned_metrics.accuracy)


def test_each_model_draws_only_its_own_members_and_all_of_them():
    _, _, keep = tiny_problem(num_models=6, num_examples=50)
    keys = engine.model_keys(0, np.arange(6))
    orders = jax.vmap(engine._members_in_random_order)(keys, jnp.asarray(keep))
    counts = jnp.asarray(keep.sum(axis=1), jnp.int32)
    batch_size = 8
    steps = engine.steps_per_epoch(keep, batch_size)
    drawn = np.concatenate(
        [np.asarray(engine.batch_indices(orders, counts, jnp.int32(step), batch_size)) for step in range(steps)],
        axis=1,
    )
    for model in range(6):
        assert set(drawn[model]) == set(np.flatnonzero(keep[model]))
    assert len({tuple(row[:5]) for row in drawn}) == 6  # each model its own order


def test_models_diverge_from_their_own_initialisations():
    images, labels, keep = tiny_problem()
    model = CNN(3, width=4, matmul_conv=True)
    states, metrics = train(model, TrainConfig(epochs=1, batch_size=8), keep, images, labels, np.arange(4))
    first_kernel = jax.tree.leaves(states.params)[0]
    assert not np.allclose(first_kernel[0], first_kernel[1])
    assert metrics.loss.shape == (4,) and np.isfinite(metrics.loss).all()


def test_infer_shapes_and_scores():
    images, labels, keep = tiny_problem()
    model = CNN(3, width=4, matmul_conv=True)
    states, _ = train(model, TrainConfig(epochs=1, batch_size=8), keep, images, labels, np.arange(4))
    from lira_jax.shadow.augment import parse_views

    views = parse_views(["identity", "mirror"], SHAPE)
    logits, scores, correct = inference.make_infer(model, views, 0)(states, images, labels, jnp.arange(10))
    assert logits.shape == (4, 10, 2, 3) and scores.shape == (4, 10, 2) and correct.shape == (4, 10)
    log_probs = jax.nn.log_softmax(np.asarray(logits, np.float64), axis=-1)
    true = np.take_along_axis(log_probs, np.asarray(labels[:10])[None, :, None, None], axis=-1)[..., 0]
    np.testing.assert_allclose(scores, true - np.log1p(-np.exp(true)), rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(correct, np.argmax(logits[:, :, 0], -1) == np.asarray(labels[:10]))


def test_per_model_hyperparameters_train_each_model_as_its_own_fixed_config():
    """A model of a run with [vary] ranges ends exactly as a run of that model alone with its drawn values."""
    images, labels, keep = tiny_problem()
    model = CNN(3, width=4, matmul_conv=True)
    config = TrainConfig(epochs=3, batch_size=8, warmup_epochs=0.5)
    vary = VaryConfig(learning_rate=(0.01, 0.3), weight_decay=(1e-4, 1e-2), label_smoothing=(0.0, 0.2), epochs=(1, 3))
    together, _ = train(model, config, keep, images, labels, np.arange(4), vary=vary)
    drawn = draw(Config(train=config, vary=vary), np.arange(4))
    assert len(set(drawn.epochs.tolist())) > 1 and len(set(drawn.learning_rate.tolist())) == 4
    for index in range(4):
        fixed = dataclasses.replace(
            config,
            learning_rate=float(drawn.learning_rate[index]),
            weight_decay=float(drawn.weight_decay[index]),
            label_smoothing=float(drawn.label_smoothing[index]),
            epochs=int(drawn.epochs[index]),
        )
        alone, _ = train(model, fixed, keep, images, labels, np.array([index]))
        for got, expected in zip(jax.tree.leaves(alone), jax.tree.leaves(together), strict=True):
            np.testing.assert_allclose(got[0], expected[index], rtol=1e-5, atol=1e-6)


def test_epoch_orders_put_each_models_members_first():
    _, _, keep = tiny_problem(num_models=4, num_examples=30)
    orders, counts, step_keys = engine.epoch_orders(engine.model_keys(0, np.arange(4)), jnp.int32(2), jnp.asarray(keep))
    np.testing.assert_array_equal(counts, keep.sum(axis=1))
    for row in range(4):
        assert set(np.asarray(orders[row, : counts[row]])) == set(np.flatnonzero(keep[row]))
    assert step_keys.shape == (4,)


def test_model_step_of_one_model_is_the_sgd_step_of_its_gradient():
    """model_step alone: with no weight decay, momentum or warm-up, params move by -rate * model_gradient."""
    images, labels, _ = tiny_problem()
    model = CNN(3, width=4, matmul_conv=True)
    config = TrainConfig(batch_size=8, weight_decay=0.0, momentum=0.0, warmup_epochs=0.0)
    optimizer = make_optimizer(config)
    key = engine.model_keys(0, np.array([0]))
    state = jax.tree.map(lambda leaf: leaf[0], engine.init_states(model, optimizer, key, SHAPE))
    plan = engine.EpochPlan(model, optimizer, 3, 8, steps=4, warmup_steps=0, augmentations=())
    hyperparameters = jax.tree.map(lambda leaf: leaf[0], draw(Config(train=config), np.array([0])))
    indices = jnp.arange(8)
    stepped, (loss, accuracy) = engine.model_step(plan, state, key[0], hyperparameters, 0, indices, images, labels)
    _, dropout_key = jax.random.split(key[0])
    targets = jax.nn.one_hot(labels[indices], 3)
    grads, _, expected_loss, _ = gradients.model_gradient(model, None, state, images[indices], targets, dropout_key)
    np.testing.assert_allclose(loss, expected_loss, rtol=1e-6)
    for new, old, grad in zip(*map(jax.tree.leaves, (stepped.params, state.params, grads)), strict=True):
        np.testing.assert_allclose(new, old - config.learning_rate * grad, rtol=1e-5, atol=1e-6)
    assert 0 <= float(accuracy) <= 1


def test_predicts_is_argmax_equals_label_ties_included():
    rng = np.random.default_rng(0)
    logits = rng.integers(0, 3, (500, 4)).astype(np.float32)  # many tied maxima: the first wins, as in argmax
    labels = rng.integers(0, 4, 500)
    np.testing.assert_array_equal(
        objectives.predicts(jnp.asarray(logits), jnp.asarray(labels)), logits.argmax(-1) == labels
    )


def test_cross_entropy_of_class_ids_is_that_of_their_one_hots_bit_for_bit():
    """soft_targets = False trains exactly as the one-hot targets did: the same loss and gradient bits."""
    rng = np.random.default_rng(1)
    logits = jnp.asarray(rng.normal(size=(16, 5)) * 4, jnp.float32)
    labels = jnp.asarray(rng.integers(0, 5, 16), jnp.int32)

    def mean_loss(logits, targets):
        return objectives.cross_entropy(logits, targets).mean()

    by_ids = jax.jit(jax.value_and_grad(mean_loss))(logits, labels)
    by_one_hots = jax.jit(jax.value_and_grad(mean_loss))(logits, jax.nn.one_hot(labels, 5))
    for ids, one_hots in zip(by_ids, by_one_hots, strict=True):
        np.testing.assert_array_equal(ids, one_hots)
