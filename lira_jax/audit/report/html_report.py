"""report.html: one self-contained page to hand to a colleague (images inline as base64 PNG, no script,
no network resource): the attack table with confidence intervals, a legible ROC of the headline attacks
and the full ROC after it (the full one alone when it has few curves), per-model accuracy, the most
exposed examples (thumbnails when the inputs are images at hand), and the config.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from lira_jax.audit.report.per_example import BAND_CURVES, FLAG_FPR, HEADLINE_ATTACKS, most_exposed, ranking_attack

TABLE_LEVELS = ("0.01", "0.001")  # TPR (with its interval) at these FPRs in the attack table

STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222;
       max-width: 1100px; margin: 24px auto; padding: 0 16px; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 17px; margin-top: 28px; border-bottom: 1px solid #ddd; }
.note { color: #555; font-size: 13px; }
table { border-collapse: collapse; font-size: 13px; }
th, td { padding: 3px 9px; text-align: right; border-bottom: 1px solid #eee; }
th { background: #f4f4f4; } td:first-child, th:first-child { text-align: left; }
tr.headline td:first-child { font-weight: 600; }
.interval { color: #777; font-size: 11px; }
img.figure { width: 100%; max-width: 860px; height: auto; }
img.thumbnail { width: 42px; height: 42px; image-rendering: pixelated; border: 1px solid #ccc; }
.scroll { max-height: 320px; overflow-y: auto; display: inline-block; }
pre { background: #f7f7f7; padding: 10px; font-size: 12px; overflow-x: auto; }
"""


def build_report(
    metrics: Mapping[str, Any],
    curves: Mapping[str, Mapping[str, Any]],
    *,
    title: str,
    examples: Mapping[str, np.ndarray] | None = None,
    top: int = 12,
    accuracy: Mapping[str, Sequence[float]] | None = None,
    images: np.ndarray | None = None,
    config_text: str | None = None,
    figures: Mapping[str, bytes] | None = None,
) -> str:
    """The page as HTML text. metrics: the metrics.json dict; curves: {attack: `metrics.roc_plot_data` plus
    its metrics}, as `plots.roc_image` takes them; examples: the per-example table (`per_example.example_table`);
    accuracy: {"train": [M], "test": [M]} per model; images: the inputs [N, H, W], [N, H, W, 3] or [N, H*W]
    for thumbnails; config_text: the config (TOML) shown verbatim; figures: the ROCs already drawn as PNG
    bytes, {"headline": ..., "every": ...} (`Audit.roc_png`), those missing drawn here."""
    figures = dict(figures or {})

    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_text(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>Membership-inference audit: {_text(title)}</h1>",
        f'<p class="note">{_summary(metrics)}</p>',
        "<h2>Attacks</h2>",
        _attack_table(metrics),
    ]
    if shows_headline(curves):
        parts += ["<h2>ROC of the headline attacks</h2>", _figure(figures, "headline", curves, title)]
    parts += ["<h2>ROC of every attack</h2>", _figure(figures, "every", curves, title)]
    if accuracy is not None:
        parts += ["<h2>Models</h2>", _accuracy_section(accuracy)]
    if examples is not None:
        parts += ["<h2>Most exposed examples</h2>", _examples_section(examples, top, images)]
    if config_text:
        parts += ["<h2>Configuration</h2>", f"<pre>{_text(config_text)}</pre>"]
    if metrics.get("invocation"):
        parts.append(f'<p class="note">invocation {_text(metrics["invocation"])}: the same id is in every output</p>')
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def shows_headline(curves: Mapping[str, Any]) -> bool:
    """Whether the report draws the headline attacks' ROC first: when the ROC of every attack is crowded
    (more curves than get their interval band) and some headline attack ran; else that one figure is legible."""
    return len(curves) > BAND_CURVES and any(name in curves for name in HEADLINE_ATTACKS)


def _summary(metrics: Mapping[str, Any]) -> str:
    targets = len(metrics["targets"])
    text = (
        f"{metrics['num_models']} models, {metrics['num_examples']:,} examples, {metrics['num_views']} view(s), "
        f"{targets} target model(s): each target is scored against the other models as its shadows, and the ROC "
        f"pools every (target, example) pair. Intervals are {_confidence(metrics)} Clopper-Pearson; "
        "n/m: not measurable with this many non-members. The ε lower bound is what the attack proves of any "
        f"(ε, δ)-DP guarantee the training could claim, at δ = {_delta(metrics):g}: ε ≥ log((TPR_low − δ) / FPR_high) "
        "at the best of the FPR levels."
    )
    return _text(text)


def _delta(metrics: Mapping[str, Any]) -> float:
    """δ of the ε lower bounds: the run's option, else what the attacks' bounds record (1e-5 by default)."""
    delta = metrics.get("options", {}).get("delta")
    for values in metrics["attacks"].values():
        delta = delta if delta is not None else (values.get("epsilon_lower_bound") or {}).get("delta")
    return 1e-5 if delta is None else float(delta)


def _confidence(metrics: Mapping[str, Any]) -> str:
    for values in metrics["attacks"].values():
        if values.get("confidence") is not None:
            return f"{values['confidence']:.0%}"
    return "95%"


def _attack_table(metrics: Mapping[str, Any]) -> str:
    header = ["attack", "AUC", "bal. acc."] + [f"TPR at {float(level) * 100:g}% FPR" for level in TABLE_LEVELS]
    header += [f"ε lower bound (δ = {_delta(metrics):g})"]
    rows = ["<table><tr>" + "".join(f"<th>{_text(cell)}</th>" for cell in header) + "</tr>"]
    for name, values in metrics["attacks"].items():
        css = ' class="headline"' if name in HEADLINE_ATTACKS else ""
        if values.get("auc") is None:
            reason = values.get("reason") or values.get("not_applicable") or "not applicable"
            cells = [f'<td colspan="{len(header) - 1}" style="text-align:left">{_text(str(reason))}</td>']
        else:
            cells = [f"<td>{values['auc']:.4f}</td>", f"<td>{values['balanced_accuracy']:.4f}</td>"]
            cells += [f"<td>{_tpr_cell(values, level)}</td>" for level in TABLE_LEVELS]
            bound = values.get("epsilon_lower_bound", {}).get("epsilon")
            cells.append(f"<td>{'' if bound is None else f'{bound:.2f}'}</td>")
        rows.append(f"<tr{css}><td>{_text(name)}</td>{''.join(cells)}</tr>")
    rows.append("</table>")
    return "\n".join(rows)


def _tpr_cell(values: Mapping[str, Any], level: str) -> str:
    point = values.get("at_fpr", {}).get(level)
    if point is None:
        tpr = values.get("tpr_at_fpr", {}).get(level)
        return "n/m" if tpr is None else f"{tpr:.2%}"
    low, high = point["tpr_interval"]
    return f'{point["tpr"]:.2%} <span class="interval">[{low:.2%}, {high:.2%}]</span>'


def _figure(figures: dict[str, bytes], which: str, curves: Mapping[str, Any], title: str) -> str:
    """The <img> of the ROC `which` ("headline" or "every" attack), drawn here unless `figures` has it."""
    if which not in figures:
        from lira_jax.audit.report import plots  # matplotlib only when drawing

        chosen = plots.headline_curves(curves) if which == "headline" else curves
        figures[which] = plots.roc_image(chosen, title=title)
    return _image_tag(figures[which], f"ROC of {which} attack{'s' if which == 'headline' else ''}", "figure")


def _image_tag(png: bytes, alt: str, css: str) -> str:
    encoded = base64.b64encode(png).decode("ascii")
    return f'<img class="{css}" alt="{_text(alt)}" src="data:image/png;base64,{encoded}">'


def _accuracy_section(accuracy: Mapping[str, Sequence[float]]) -> str:
    train, test = (np.asarray(accuracy[key], dtype=np.float64) for key in ("train", "test"))
    lines = [
        f'<p class="note">mean train accuracy {np.nanmean(train):.4f}, mean test accuracy {np.nanmean(test):.4f}, '
        f"mean gap {np.nanmean(train - test):.4f}</p>",
        '<div class="scroll"><table><tr><th>model</th><th>train accuracy</th><th>test accuracy</th><th>gap</th></tr>',
    ]
    for model, (a, b) in enumerate(zip(train, test, strict=True)):
        lines.append(f"<tr><td>{model}</td><td>{_number(a)}</td><td>{_number(b)}</td><td>{_number(a - b)}</td></tr>")
    lines.append("</table></div>")
    return "\n".join(lines)


def _examples_section(examples: Mapping[str, np.ndarray], top: int, images: np.ndarray | None) -> str:
    attack = ranking_attack(examples)
    if attack is None:
        return '<p class="note">no attack scores per example</p>'
    chosen = most_exposed(examples, attack, top)
    thumbnails = images is not None and _picture(images, int(chosen[0])) is not None
    header = ["example", *(["input"] if thumbnails else []), "label", "in models", "flagged", "mean in", "mean out"]
    lines = [
        f'<p class="note">ranked by {_text(attack)}: the share of the targets trained on the example that flag it '
        f"at the threshold giving {FLAG_FPR:.1%} FPR, then its mean score when in minus when out "
        f"(the full table is examples.csv). Scores are {_text(attack)}'s: {_text(_meaning(attack))}.</p>",
        "<table><tr>" + "".join(f"<th>{cell}</th>" for cell in header) + "</tr>",
    ]
    for example in chosen:
        flagged = examples[f"{attack}_flagged"][example]
        cells = [str(example)]
        if thumbnails:
            cells.append(_thumbnail(_picture(images, int(example)), int(example)))
        cells += [
            str(examples["label"][example]),
            str(examples["members"][example]),
            "n/m" if math.isnan(flagged) else f"{flagged:.0%}",
            _score(examples[f"{attack}_in"][example]),
            _score(examples[f"{attack}_out"][example]),
        ]
        lines.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
    lines.append("</table>")
    return "\n".join(lines)


SCORE_MEANINGS = {  # what the ranking attack's score is, for the reader of the examples table
    "lira_online": "log N(φ; μ_in, σ_in²) − log N(φ; μ_out, σ_out²), the mean over views of the log-likelihood "
    "ratio of the target's φ under the IN and the OUT Gaussians; above 0 it is likelier a member",
    "lira_offline": "log Φ((φ − μ_out) / σ_out), the mean over views of the log of how far up the OUT "
    "distribution the target's φ lies; near 0 above it, very negative below it",
    "rmia_online": "the fraction of the population the example's likelihood ratio beats (0 to 1)",
    "global_threshold": "φ, the logit-scaled confidence, mean over views",
}


def _meaning(attack: str) -> str:
    """SCORE_MEANINGS for an attack or its fixed-variance variant; else "higher is likelier a member"."""
    return SCORE_MEANINGS.get(attack.removesuffix("_fixed_var"), "higher is likelier a member")


def _picture(images: np.ndarray, example: int) -> np.ndarray | None:
    """One input as a picture [H, W] or [H, W, 3] scaled to [0, 1], or None if the inputs are not images.
    Accepted: [N, H, W], [N, H, W, 1 or 3], [N, 1 or 3, H, W] (channels first) and [N, H*W] (square)."""
    picture = np.asarray(images[example], dtype=np.float64)
    if picture.ndim == 1 and math.isqrt(picture.size) ** 2 == picture.size and picture.size >= 16:
        picture = picture.reshape((math.isqrt(picture.size),) * 2)
    elif picture.ndim == 3 and picture.shape[0] in (1, 3) and picture.shape[2] not in (1, 3):
        picture = np.moveaxis(picture, 0, -1)
    if picture.ndim == 3 and picture.shape[2] == 1:
        picture = picture[:, :, 0]
    if not (picture.ndim == 2 or (picture.ndim == 3 and picture.shape[2] == 3)):
        return None
    finite = np.isfinite(picture)
    if not finite.any():
        return np.zeros_like(picture)
    low, high = picture[finite].min(), picture[finite].max()  # NaN and ±inf drawn as the lowest value
    scaled = (np.where(finite, picture, low) - low) / (high - low) if high > low else np.zeros_like(picture)
    return np.clip(scaled, 0.0, 1.0)


def _thumbnail(picture: np.ndarray, example: int) -> str:
    import matplotlib.image

    buffer = io.BytesIO()
    matplotlib.image.imsave(buffer, picture, cmap="gray_r" if picture.ndim == 2 else None, format="png")
    return _image_tag(buffer.getvalue(), f"example {example}", "thumbnail")


def _score(value: float) -> str:
    """An attack score to 3 significant digits, with a true minus sign and thousands separators (LiRA's
    log-likelihood ratios run from about −1e4 to 1e4): 6.30, −40.6, 0.499, −12,345, 1.23e+06."""
    if value is None or math.isnan(value):
        return ""
    magnitude = abs(value)
    if magnitude >= 1e6 or 0 < magnitude < 1e-3:
        text = f"{value:.2e}"
    else:
        decimals = 2 if magnitude == 0 else max(0, 2 - math.floor(math.log10(magnitude)))
        text = f"{value:,.{decimals}f}"
    return text.replace("-", "\u2212")


def _number(value: float, digits: int = 4) -> str:
    return "" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def _text(text: str) -> str:
    return html.escape(text, quote=True)
