"""lira-jax: membership-inference auditing with hundreds of shadow models trained at once in JAX.

The public, typed API (shapes and dtypes in each docstring):

- `audit_logits(logits, keep, labels, *, attacks, targets, views) -> Audit`: every attack on logits from any
  framework, in one call; `Audit` has .metrics, .examples, .table(), .plot_roc(path), .to_html(path).
- `make_keep(num_models, num_examples, seed=...)`: which model trains on which example.
- `load_run(folder)`: a run folder's arrays; `read_lira_reference(folder)`: the LiRA reference code's.
- `train_shadows(x, y, *, model, out, optimizer=None, **settings) -> Path`: trains shadow models of the
  user's own recipe (arrays, Flax model, optax optimizer) into a run folder, as the command line does.
- The scoring functions: `logit_scale` (φ), `lira_scores`, `rmia`, `baseline_scores`, `classifier_scores`,
  `score_attacks` (any attacks by name), `roc_curve` and `attack_metrics`.

Names are imported when first used, so `import lira_jax` is cheap and never imports JAX (nor does any of
these names; calling train_shadows does: the training half is `lira_jax.shadow`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_HOMES = {
    "audit_logits": "lira_jax.audit.api",
    "Audit": "lira_jax.audit.report.result",
    "make_keep": "lira_jax.shadow.data",
    "load_run": "lira_jax.store",
    "read_lira_reference": "lira_jax.audit.inputs.readers",
    "logit_scale": "lira_jax.audit.inputs.phi",
    "lira_scores": "lira_jax.audit.attacks.lira.lira",
    "rmia": "lira_jax.audit.attacks.rmia",
    "baseline_scores": "lira_jax.audit.attacks.baselines",
    "classifier_scores": "lira_jax.audit.attacks.classifiers",
    "score_attacks": "lira_jax.audit.registry",
    "roc_curve": "lira_jax.audit.metrics",
    "attack_metrics": "lira_jax.audit.metrics",
    "UserError": "lira_jax.errors",
    "train_shadows": "lira_jax.train_api",
}
__all__ = [
    "Audit",
    "UserError",
    "attack_metrics",
    "audit_logits",
    "baseline_scores",
    "classifier_scores",
    "lira_scores",
    "load_run",
    "logit_scale",
    "make_keep",
    "read_lira_reference",
    "rmia",
    "roc_curve",
    "score_attacks",
    "train_shadows",
]

if TYPE_CHECKING:
    from lira_jax.audit.api import audit_logits
    from lira_jax.audit.attacks.baselines import baseline_scores
    from lira_jax.audit.attacks.classifiers import classifier_scores
    from lira_jax.audit.attacks.lira.lira import lira_scores
    from lira_jax.audit.inputs.phi import logit_scale
    from lira_jax.audit.inputs.readers import read_lira_reference
    from lira_jax.audit.metrics import attack_metrics, roc_curve
    from lira_jax.audit.registry import score_attacks
    from lira_jax.audit.report.result import Audit
    from lira_jax.errors import UserError
    from lira_jax.shadow.data import make_keep
    from lira_jax.store import load_run
    from lira_jax.train_api import train_shadows


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'lira_jax' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])
