"""Output masking at query time: what an API that hides part of its prediction vector lets an attacker see.

A mask turns each model's logits z: float[..., C] into the masked output, given back as pseudo-logits
(log-probabilities, float64[..., C]) so that φ and every attack on logits run on it unchanged:

- `top:K`: the K largest probabilities are shown; the hidden mass 1 − Σ shown is known to the attacker
  and spread evenly over the C − K hidden classes (the most even completion of what is shown). Computed
  in log space from the logits, so no probability underflows and no floor is needed: for a label among
  the top K, φ is exactly the unmasked φ. Ties at the K-th place go to the lower class index.
- `round:D`: the probabilities rounded to D decimals (NumPy's round, half to even).
- `label`: only the predicted class, as a one-hot vector (round:0 of it).

Rounding and label-only report zeros and ones, where log p and log(1 − p) are infinite. A reported 0 is
read as FLOOR = 10^-D / (2C) (D = 0 for label), before the log: the C floors add at most half a
reported digit in total, so the renormalised vector (softmax of the pseudo-logits) stays within the
rounding interval of the reported one, and φ stays finite.

Label-only leaves one bit per query: every attack that reads the label becomes a function of whether
the model labels the example right (correctness), and those that ignore the label (confidence,
entropy, the attack classifiers' sorted vectors) score every example the same.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy.special import logsumexp

from lira_jax.audit.inputs.checked import AttackInputs
from lira_jax.audit.inputs.phi import streamed_phi
from lira_jax.audit.streaming import ExampleArray, MappedExamples
from lira_jax.errors import UserError

MAX_DECIMALS = 17  # round:D beyond this changes no float64 probability
MASK_FORMS = "top:K (K >= 1), round:D (D >= 0) or label"


@dataclass(frozen=True)
class Mask:
    """A parsed mask: kind top (value K), round (value D) or label (value 0)."""

    kind: str
    value: int = 0

    @property
    def spec(self) -> str:
        return "label" if self.kind == "label" else f"{self.kind}:{self.value}"

    def floor(self, num_classes: int) -> float | None:
        """The probability a reported 0 is read as, or None where the mask reports no zeros (top:K)."""
        return None if self.kind == "top" else 10.0**-self.value / (2 * num_classes)


def parse_mask(spec: str) -> Mask:
    """`top:K`, `round:D` or `label` as a Mask; UserError for anything else (top:0, round:-1, ...)."""
    text = spec.strip()
    if text == "label":
        return Mask("label")
    kind, _, value = text.partition(":")
    try:
        number = int(value)
    except ValueError:
        number = None
    if kind not in ("top", "round") or number is None or number < (1 if kind == "top" else 0):
        raise UserError(f"--mask must be {MASK_FORMS}, got {spec!r}")
    if kind == "round" and number > MAX_DECIMALS:
        raise UserError(f"--mask round:D rounds to D decimals, at most {MAX_DECIMALS} (float64's), got {number}")
    return Mask(kind, number)


def check_mask(mask: Mask, num_classes: int) -> None:
    """UserError if the mask cannot apply to outputs with num_classes classes (top:K with K > C)."""
    if mask.kind == "top" and mask.value > num_classes:
        raise UserError(f"--mask {mask.spec} asks for more classes than the models output ({num_classes})")


def mask_logits(logits: Any, mask: Mask) -> np.ndarray:
    """The masked output of logits float[..., C] as pseudo-logits float64[..., C] (log-probabilities)."""
    logits = np.asarray(logits, dtype=np.float64)
    num_classes = logits.shape[-1]
    check_mask(mask, num_classes)
    log_p = logits - logsumexp(logits, axis=-1, keepdims=True)
    if mask.kind == "top":
        if mask.value == num_classes:
            return log_p
        ranks = np.argsort(np.argsort(-logits, axis=-1, kind="stable"), axis=-1, kind="stable")
        shown = ranks < mask.value
        hidden_mass = logsumexp(np.where(shown, -np.inf, log_p), axis=-1, keepdims=True)
        return np.where(shown, log_p, hidden_mass - np.log(num_classes - mask.value))
    if mask.kind == "round":
        reported = np.round(np.exp(log_p), mask.value)
    else:
        reported = logits.argmax(axis=-1)[..., None] == np.arange(num_classes)
    return np.log(np.maximum(reported, mask.floor(num_classes)))


def masked_logits(logits: ExampleArray, mask: Mask) -> MappedExamples:
    """The masked output of logits float[M, N, V, C] as pseudo-logits float64[M, N, V, C], computed as read."""
    return MappedExamples(logits, lambda chunk, start, stop: mask_logits(chunk, mask), logits.shape, np.float64)


def masked_run(logits: ExampleArray, labels: np.ndarray, mask: Mask) -> tuple[MappedExamples, MappedExamples]:
    """(φ float32[M, N, V], pseudo-logits float64[M, N, V, C]) of the masked output, computed as read:
    what every attack reads under a mask. labels: int[N]."""
    masked = masked_logits(logits, mask)
    return streamed_phi(masked, labels), masked


def masked_inputs(inputs: AttackInputs, mask: Mask) -> AttackInputs:
    """The inputs as the attacks see them under `mask`: φ from the masked logits, masked pseudo-logits (also
    the transfer shadow's); checked inputs stay checked, the mask being checked against their classes here."""
    check_mask(mask, inputs.logits.shape[3])
    scores, logits = masked_run(inputs.logits, inputs.labels, mask)
    transfer = inputs.transfer
    if transfer is not None:
        check_mask(mask, transfer.logits.shape[3])
        transfer = replace(transfer, logits=masked_logits(transfer.logits, mask))
    return replace(inputs, scores=scores, logits=logits, transfer=transfer)
