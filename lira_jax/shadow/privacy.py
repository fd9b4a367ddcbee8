"""DP-SGD (Abadi et al. 2016): per-example clipped gradients with Gaussian noise, and its epsilon.

The per-example gradients are a vmap over the examples of one model's batch; the engine vmaps that
again over the model axis, so every model of a chunk is privately trained at once.

Accounting uses dp-accounting's PLD (privacy loss distribution) accountant for the Poisson-subsampled
Gaussian mechanism (tighter than RDP, and without RDP's convergence warnings at small orders), with
sampling probability batch size / members and one event per step, for both samplers of train.dp_sampling:
- "poisson" (poisson.py) draws each step's batch as that event says, so the epsilon is a proof for what was
  run, up to overflowing steps (models.json counts them; 0 but for a vanishingly rare step);
- "shuffle" (the default, faster) draws fixed-size batches from a shuffled order instead, the usual practice
  whose epsilon is this standard approximation (as reported by Opacus and TF Privacy), not a proof for it.
dp-accounting is imported only here, when epsilon is asked for (the pip extra `lira-jax[dp]`).
"""

import functools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from lira_jax.config import Config
from lira_jax.errors import UserError
from lira_jax.shadow.hyperparameters import draw


class Privacy(NamedTuple):
    noise_multiplier: float  # noise standard deviation in units of clip_norm
    clip_norm: float  # each example's gradient is scaled to at most this L2 norm (over all parameters)


def private_gradient(
    example_loss: Callable[..., tuple[jax.Array, Any]],
    params: Any,
    examples: tuple[jax.Array, ...],
    key: jax.Array,
    privacy: Privacy,
    sample: tuple[jax.Array, int] | None = None,
) -> tuple[Any, jax.Array, Any]:
    """DP-SGD's gradient of one model's batch: (sum of clipped per-example gradients + noise) / B.

    example_loss(params, *example) -> (loss: float32 scalar, aux) for ONE example; examples: arrays with
    a leading batch axis B (one slice each per call). Returns (gradient: like params, losses: float32[B],
    aux with a leading B). The noise is N(0, (noise_multiplier * clip_norm)^2) per parameter, keyed by `key`.
    sample = (mask bool[B], expected batch size q n) for a Poisson sample in a masked buffer: the masked
    examples add nothing to the sum, which is divided by the expected batch size, not by B (as Opacus and
    TF Privacy do: the noise is then calibrated to the sampler the accountant describes).
    """
    in_axes = (None,) + (0,) * len(examples)
    (losses, aux), gradients = jax.vmap(jax.value_and_grad(example_loss, has_aux=True), in_axes)(params, *examples)
    leaves, structure = jax.tree.flatten(gradients)
    batch = losses.shape[0]
    norms = jnp.sqrt(sum(jnp.sum(jnp.square(leaf.reshape(batch, -1)), axis=1) for leaf in leaves))
    scales = jnp.minimum(1.0, privacy.clip_norm / jnp.maximum(norms, 1e-12))
    if sample is not None:
        scales = jnp.where(sample[0], scales, 0.0)
        batch = sample[1]
    noise_keys = jax.random.split(key, len(leaves))
    noisy = [
        jnp.tensordot(scales, leaf, axes=1)
        + privacy.noise_multiplier * privacy.clip_norm * jax.random.normal(noise_key, leaf.shape[1:], leaf.dtype)
        for leaf, noise_key in zip(leaves, noise_keys, strict=True)
    ]
    return jax.tree.unflatten(structure, [leaf / batch for leaf in noisy]), losses, aux


def sampling_probability(batch_size: int, members: int) -> float:
    """batch_size / members rounded UP to 3 significant digits: a slightly larger (so conservative) q that
    lets models with nearly equal member counts share one cached accountant run (about 1 s each)."""
    exact = min(1.0, batch_size / members)
    scale = 10.0 ** (2 - math.floor(math.log10(exact)))
    return min(1.0, math.ceil(exact * scale) / scale)


def accountant_module():
    """The dp_accounting package, or a UserError naming the pip extra that brings it."""
    try:
        import dp_accounting
    except ImportError:
        raise UserError("train.dp_sgd needs dp-accounting for its epsilon: pip install 'lira-jax[dp]'") from None
    return dp_accounting


@functools.cache
def epsilon(noise_multiplier: float, sampling_probability: float, steps: int, delta: float) -> float:
    """The epsilon of `steps` Poisson-subsampled Gaussian steps at `delta` (PLD accountant); inf without noise."""
    if noise_multiplier == 0:
        return math.inf
    dp_accounting = accountant_module()
    step = dp_accounting.PoissonSampledDpEvent(sampling_probability, dp_accounting.GaussianDpEvent(noise_multiplier))
    accountant = dp_accounting.pld.PLDAccountant()
    accountant.compose(dp_accounting.SelfComposedDpEvent(step, steps))
    return float(accountant.get_epsilon(delta))


def privacy_records(config: Config, keep: np.ndarray, model_indices: np.ndarray, steps: int) -> list[dict]:
    """Per-model {"dp_epsilon", "dp_delta", "dp_sampling"} at train.dp_delta for a DP-SGD run (`epsilon`), else
    empty records. The epsilon is the same number for both samplers; dp_sampling says whether it is a proof
    ("poisson") or the usual approximation ("shuffle")."""
    train = config.train
    if not train.dp_sgd:
        return [{} for _ in model_indices]
    epochs = draw(config, model_indices).epochs
    members = keep[model_indices].sum(axis=1)
    return [
        {
            "dp_epsilon": epsilon(
                train.dp_noise_multiplier,
                sampling_probability(train.batch_size, int(count)),
                int(model_epochs) * steps,
                train.dp_delta,
            ),
            "dp_delta": train.dp_delta,
            "dp_sampling": train.dp_sampling,
        }
        for count, model_epochs in zip(members, epochs, strict=True)
    ]
