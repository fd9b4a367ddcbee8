"""The LiRA reference code's plot.py (Carlini et al. 2022, tensorflow/privacy research/mi_lira_2021), its
semantics written out plainly in NumPy and SciPy: the oracle of `--lira-counts reference`
(tests/audit/test_reference_counts.py) and the baseline of benchmarks/score_throughput.py.

For a target model t, every other model is a shadow, in model order. For each example n the IN list is
the shadows' scores φ[m, n, :] with keep[m, n], the OUT list those without; both are truncated to the
smallest count over all examples (the first ones in model order). μ is the per-view median of each list,
σ its per-view std (ddof 0), plus 1e-30; the fixed variance is the std of every value of the truncated IN
lists (online, for both sides) or of the OUT lists (offline). Scores, higher = more likely a member:

    online:  mean over views of log N(φ_t; μ_in, σ_in²) − log N(φ_t; μ_out, σ_out²)
    offline: mean over views of −log N(φ_t; μ_out, σ_out²)   (two-sided)
    global:  mean over views of φ_t

`plot_semantics` follows plot.py's steps (a list per example); `plot_semantics_vectorised` computes the
same with whole-array NumPy (one gather of the first K shadows of each side, then reductions over the
model axis), as a plain implementation written for speed would.

Run as a script it is the benchmark's whole command in plain NumPy/SciPy: load a folder's scores.npy
float32 [M, N, V] and keep.npy bool [M, N] into memory, score the last model as plot.py does (with
--vectorised, the vectorised way), sweep each attack's ROC with scikit-learn, draw one figure, and print
the AUCs and TPR at FPR < 0.1% as JSON.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import scipy.stats


def truncated_sets(
    scores: np.ndarray, keep: np.ndarray, target: int, dtype: type = np.float64
) -> tuple[np.ndarray, np.ndarray]:
    """(IN, OUT) of `target`: `dtype` [N, K_in, V] and [N, K_out, V], each list truncated to the smallest
    count over examples, in model order. scores: float [M, N, V]; keep: bool [M, N]."""
    shadows = np.arange(len(keep)) != target
    shadow_scores, shadow_keep = scores[shadows], keep[shadows]
    lists_in = [shadow_scores[shadow_keep[:, n], n, :] for n in range(keep.shape[1])]
    lists_out = [shadow_scores[~shadow_keep[:, n], n, :] for n in range(keep.shape[1])]
    size_in = min(len(values) for values in lists_in)
    size_out = min(len(values) for values in lists_out)
    sets_in = np.array([values[:size_in] for values in lists_in], dtype=dtype)
    sets_out = np.array([values[:size_out] for values in lists_out], dtype=dtype)
    return sets_in, sets_out


def plot_semantics(
    scores: np.ndarray, keep: np.ndarray, target: int, dtype: type = np.float64
) -> dict[str, np.ndarray]:
    """plot.py's scores of one target: {lira_online, lira_online_fixed_var, lira_offline_two_sided,
    lira_offline_two_sided_fixed_var, global_threshold: [N]}, computed in `dtype` (plot.py: the file's)."""
    sets_in, sets_out = truncated_sets(scores, keep, target, dtype)
    return _scored(np.asarray(scores[target], dtype=dtype), sets_in, sets_out, axis=1)


def plot_semantics_vectorised(
    scores: np.ndarray, keep: np.ndarray, target: int, dtype: type = np.float64
) -> dict[str, np.ndarray]:
    """`plot_semantics` with whole-array NumPy: each example's shadows ordered IN then OUT in model order
    (a stable argsort of keep), the first K of each side gathered at once."""
    shadows = np.arange(len(keep)) != target
    shadow_scores, shadow_keep = scores[shadows], keep[shadows]
    order = np.argsort(~shadow_keep, axis=0, kind="stable")  # [M - 1, N]: IN models, then OUT ones
    count_in = shadow_keep.sum(axis=0)
    size_in, size_out = count_in.min(), (len(shadow_keep) - count_in).min()
    examples = np.arange(keep.shape[1])
    rows_out = np.take_along_axis(order, count_in[None, :] + np.arange(size_out)[:, None], axis=0)
    sets_in = shadow_scores[order[:size_in], examples].astype(dtype)  # [K_in, N, V]
    sets_out = shadow_scores[rows_out, examples].astype(dtype)
    observed = np.asarray(scores[target], dtype=dtype)
    return _scored(observed, sets_in, sets_out, axis=0)


def _scored(observed: np.ndarray, sets_in: np.ndarray, sets_out: np.ndarray, axis: int) -> dict[str, np.ndarray]:
    """plot.py's five scores [N] of the target's φ [N, V] against its sets, their shadows along `axis`
    ([N, K, V] with axis 1, [K, N, V] with axis 0)."""
    median_in, median_out = np.median(sets_in, axis=axis), np.median(sets_out, axis=axis)
    std_in, std_out = np.std(sets_in, axis=axis) + 1e-30, np.std(sets_out, axis=axis) + 1e-30
    fixed_in, fixed_out = np.std(sets_in) + 1e-30, np.std(sets_out) + 1e-30
    logpdf = scipy.stats.norm.logpdf
    return {
        "lira_online": (logpdf(observed, median_in, std_in) - logpdf(observed, median_out, std_out)).mean(axis=1),
        "lira_online_fixed_var": (logpdf(observed, median_in, fixed_in) - logpdf(observed, median_out, fixed_in)).mean(
            axis=1
        ),
        "lira_offline_two_sided": -logpdf(observed, median_out, std_out).mean(axis=1),
        "lira_offline_two_sided_fixed_var": -logpdf(observed, median_out, fixed_out).mean(axis=1),
        "global_threshold": observed.mean(axis=1),
    }


def main(folder: Path, vectorised: bool = False) -> None:
    """The plain whole command: load, score the last model, sweep each ROC, draw one figure, print JSON."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import auc, roc_curve

    started = time.perf_counter()
    scores = np.load(folder / "scores.npy")
    keep = np.load(folder / "keep.npy")[:, : scores.shape[1]]
    target = len(keep) - 1
    results = {}
    plt.figure(figsize=(4, 3))
    semantics = plot_semantics_vectorised if vectorised else plot_semantics
    for name, values in semantics(scores, keep, target, scores.dtype.type).items():
        fpr, tpr, _ = roc_curve(keep[target], values)
        results[name] = {"auc": auc(fpr, tpr), "tpr_at_fpr_below_0.001": float(tpr[np.where(fpr < 0.001)[0][-1]])}
        plt.plot(fpr, tpr, label=name)
    plt.loglog()
    plt.xlim(1e-5, 1)
    plt.ylim(1e-5, 1)
    plt.legend(fontsize=6)
    plt.savefig(folder / "plot_reference.png")
    print(json.dumps({"attacks": results, "seconds_after_imports": round(time.perf_counter() - started, 3)}))


if __name__ == "__main__":
    main(Path(sys.argv[1]), vectorised="--vectorised" in sys.argv[2:])
