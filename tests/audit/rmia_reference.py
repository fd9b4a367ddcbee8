"""A plain re-implementation of RMIA as lira_jax.audit.attacks.rmia defines it, loop by loop, for tiny arrays.

Nothing here is shared with the vectorised code but the drop hash (`equalise.drop_hash`, the seeded choice
of the shadow an equalised set drops) and the resolution ties are decided at (`leave_out.RESOLUTION`).
"""

import math

import numpy as np

from lira_jax.audit.attacks.equalise import DEFAULT_SEED, drop_hash
from lira_jax.audit.attacks.leave_out import RESOLUTION


def dropped_out_shadow(keep, target, example):
    """The OUT shadow an equalised set drops for (target, example), or None: one of the larger side's
    shadows, the j-th in model order, j = hash mod its size, when the OUT side is the larger."""
    num_models = keep.shape[0]
    shadows_in = [m for m in range(num_models) if m != target and keep[m, example]]
    shadows_out = [m for m in range(num_models) if m != target and not keep[m, example]]
    if len(shadows_out) <= len(shadows_in):
        return None
    j = int(drop_hash(DEFAULT_SEED, np.array([target]), np.array([example]))[0, 0] % np.uint64(len(shadows_out)))
    return shadows_out[j]


def log_ratio(p, keep, target, example, online, a):
    """log p_t(x) / Pr(x), rounded to RESOLUTION, for p float64[M, N] (each model's probability of the label)."""
    num_models = keep.shape[0]
    if online:
        reference = np.mean([p[m, example] for m in range(num_models) if m != target])
    else:
        dropped = dropped_out_shadow(keep, target, example)
        out = [p[m, example] for m in range(num_models) if m not in (target, dropped) and not keep[m, example]]
        reference = ((1 + a) * np.mean(out) + (1 - a)) / 2
    value = math.log(p[target, example]) - math.log(reference)
    return round(value / RESOLUTION) * RESOLUTION


def rmia_score(ratios, population, x, gamma):
    """x's score against the population's log ratios: the share z with LR(x, z) >= gamma among the z whose
    ratio differs from x's, plus where x lies between its neighbours (scaled into [0, 0.999])."""
    others = sorted(ratios[z] for z in population if ratios[z] != ratios[x])
    if not others:
        return 0.5
    value = ratios[x] - math.log(gamma)
    below = sum(ratio <= value for ratio in others)
    if below == 0:
        position = math.exp(value - others[0])
    elif below == len(others):
        position = 1 - math.exp(others[-1] - value)
    else:
        lower, upper = others[below - 1], others[below]
        position = (value - lower) / (upper - lower) if upper > lower else 0.0
    return (below + min(max(position, 0.0), 0.999)) / len(others)


def naive_rmia(scores, keep, target, online, a=0.3, gamma=1.0, population=None):
    """float64[N]: target's RMIA score of every example; scores float[M, N, V], keep bool[M, N]."""
    num_models, num_examples, _ = scores.shape
    p = (1 / (1 + np.exp(-scores.astype(np.float64)))).mean(axis=-1)
    ratios = [log_ratio(p, keep, target, n, online, a) for n in range(num_examples)]
    candidates = range(num_examples) if population is None else population
    zs = [z for z in candidates if not keep[target, z]]
    return np.array([rmia_score(ratios, zs, x, gamma) for x in range(num_examples)])
