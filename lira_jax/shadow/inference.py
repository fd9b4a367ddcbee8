"""The query step: every model of a chunk on a batch of examples under every view, in one jitted call."""

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.sharding import Mesh

from lira_jax.shadow import engine
from lira_jax.shadow.augment import apply_views
from lira_jax.shadow.phi import logit_scale_jax


def make_infer(
    model: engine.Model, views: tuple, identity_view: int | None, loop_groups: int = 0, unroll_mesh: Mesh | None = None
) -> Callable[..., tuple[jax.Array, jax.Array, jax.Array]]:
    """Builds the jitted `infer(states, images, labels, positions) -> (logits, scores, correct)` for one
    batch: the examples at `positions`.

    images: float32[N, H, W, C], labels: int32[N], positions: int32[B] ->
    logits: float32[M, B, V, C], scores: float32[M, B, V] (logit-scaled confidence φ),
    correct: bool[M, B] (prediction on the unaltered image). BatchNorm runs on its running statistics.
    `identity_view` is the index of the identity among `views`, if it is there. `loop_groups` and
    `unroll_mesh`: as in engine.make_train_epoch (engine.over_models).
    """

    def apply_all(states: engine.TrainState, images):
        def one_model(params, batch_stats, images):
            return model.apply({"params": params, "batch_stats": batch_stats}, images, train=False)

        return engine.over_models(one_model, loop_groups, unroll_mesh, (images,))(states.params, states.batch_stats)

    @jax.jit
    def infer(states: engine.TrainState, all_images, all_labels, positions):
        images, labels = all_images[positions], all_labels[positions]
        viewed = apply_views(images, views)  # [V, B, H, W, C]
        num_views, batch = viewed.shape[:2]
        logits = apply_all(states, viewed.reshape(num_views * batch, *viewed.shape[2:]))
        logits = jnp.swapaxes(logits.reshape(logits.shape[0], num_views, batch, -1), 1, 2)
        scores = logit_scale_jax(logits, labels[None, :, None])
        plain = logits[:, :, identity_view] if identity_view is not None else apply_all(states, images)
        correct = jnp.argmax(plain, axis=-1) == labels[None, :]
        return logits, scores, correct

    return infer
