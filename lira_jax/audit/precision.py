"""Precision (PPV) at a stated member prior, at the low-FPR operating points of `metrics.attack_metrics`.

An audit's members and non-members are balanced, but in deployment members may be rare: out of every
example queried a fraction π (the member prior) is a member. At the ROC point of TPR and FPR, the share of
the examples flagged "member" that are members is then

    PPV(π) = π · TPR / (π · TPR + (1 − π) · FPR),

1.0 where the point flags members only (FPR = 0 < TPR), null where it flags nothing.
"""

from __future__ import annotations

from typing import Any

MEMBER_PRIORS = (0.01, 0.1)


def precision_at_fpr(at_fpr: dict[str, Any], priors: tuple[float, ...] = MEMBER_PRIORS) -> dict[str, Any]:
    """{str(alpha): {str(prior): PPV or None} or None} from metrics.json's at_fpr (each point's tpr and fpr:
    the ROC point behind tpr_at_fpr, whose FPR is at most alpha), null where the point is."""
    return {
        alpha: None if point is None else {str(prior): ppv(point["tpr"], point["fpr"], prior) for prior in priors}
        for alpha, point in at_fpr.items()
    }


def ppv(tpr: float, fpr: float, prior: float) -> float | None:
    """PPV at member prior `prior` of a point (tpr, fpr); None where the point flags nothing."""
    flagged = prior * tpr + (1 - prior) * fpr
    return None if flagged == 0 else prior * tpr / flagged
