"""report.html: self-contained structure (tested here), and a headless-Chromium screenshot where a browser is
installed; metrics.csv, one row per attack."""

import csv
import io
import shutil
import subprocess
from html.parser import HTMLParser

import numpy as np
import pytest
from conftest import HANG_GUARD_S

from lira_jax.audit.inputs.phi import logit_scale
from lira_jax.audit.metrics import attack_metrics, roc_curve, roc_plot_data
from lira_jax.audit.registry import score_attacks
from lira_jax.audit.report.html_report import build_report
from lira_jax.audit.report.per_example import example_table
from lira_jax.audit.report.table import metrics_csv

ATTACKS = (
    "lira_online",
    "lira_online_fixed_var",
    "lira_offline",
    "rmia_online",
    "global_threshold",
    "loss",
    "calibrated_loss",
)


def _audit(num_models=8, num_examples=300, seed=0):
    """Scores, metrics and curves of a small synthetic audit (membership raises the true logit)."""
    rng = np.random.default_rng(seed)
    keep = np.argsort(rng.random((num_models, num_examples)), axis=0) < num_models // 2
    labels = rng.integers(0, 10, num_examples)
    logits = rng.normal(size=(num_models, num_examples, 1, 10))
    logits[:, np.arange(num_examples), 0, labels] += 2 + 2 * keep
    scores = logit_scale(logits, labels)
    attack_scores = score_attacks(scores, keep, None, ATTACKS, logits=logits, labels=labels)
    per_attack, curves = {}, {}
    for name, values in attack_scores.items():
        roc = roc_curve(keep, values)
        per_attack[name] = attack_metrics(keep, None, roc=roc)
        curves[name] = {**roc_plot_data(roc), **per_attack[name]}
    metrics = {
        "num_models": num_models,
        "num_examples": num_examples,
        "num_views": 1,
        "targets": list(range(num_models)),
        "attacks": per_attack,
    }
    return metrics, curves, example_table(attack_scores, keep, labels), labels


def _report(**options):
    from sklearn.datasets import load_digits

    metrics, curves, examples, _ = _audit()
    train = np.linspace(0.95, 1.0, 8)
    images = load_digits().images[:300]
    return build_report(
        metrics,
        curves,
        title="digits <test>",
        examples=examples,
        accuracy={"train": train, "test": train - 0.1},
        images=images,
        config_text='[train]\nnum_models = 8  # "quoted" & <escaped>',
        **options,
    )


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.sources, self.headings, self.rows, self.text = [], [], [], 0, []
        self._heading = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        self.sources += [attrs[key] for key in ("src", "href") if key in attrs]
        self._heading = tag in ("h1", "h2")
        self.rows += tag == "tr"

    def handle_endtag(self, tag):
        self._heading = False

    def handle_data(self, data):
        self.text.append(data)
        if self._heading:
            self.headings.append(data)


def test_report_is_self_contained_and_complete():
    page = _Page()
    page.feed(_report(top=5))
    assert not {"script", "link", "iframe", "object"} & set(page.tags)  # 7 attacks: the headline ROC first
    assert page.sources and all(source.startswith("data:image/png;base64,") for source in page.sources)
    assert page.headings == [
        "Membership-inference audit: digits <test>",
        "Attacks",
        "ROC of the headline attacks",
        "ROC of every attack",
        "Models",
        "Most exposed examples",
        "Configuration",
    ]
    assert page.sources.count(page.sources[-1]) == 1 and len(page.sources) == 2 + 5  # two ROCs, five thumbnails
    text = "".join(page.text)
    assert "<escaped>" in text and "lira_online_fixed_var" in text
    assert page.rows == (1 + len(ATTACKS)) + (1 + 8) + (1 + 5)


def test_not_applicable_attack_and_no_images():
    metrics, curves, examples, _ = _audit()
    metrics["attacks"]["lira_online"] = {"auc": None, "reason": "fewer than 2 IN shadows for some examples"}
    page = build_report(metrics, {k: v for k, v in curves.items() if k != "lira_online"}, title="t", examples=examples)
    assert "fewer than 2 IN shadows" in page and 'class="thumbnail"' not in page and "Configuration" not in page
    # six curves are legible in one figure: no separate headline ROC
    assert "ROC of the headline attacks" not in page and page.count('class="figure"') == 1


def test_metrics_csv_one_row_per_attack():
    metrics, *_ = _audit()
    rows = list(csv.DictReader(io.StringIO(metrics_csv(metrics))))
    assert [row["attack"] for row in rows] == list(ATTACKS)
    first = metrics["attacks"]["lira_online"]
    assert float(rows[0]["auc"]) == pytest.approx(first["auc"])
    assert float(rows[0]["tpr_low_0.01"]) == pytest.approx(first["at_fpr"]["0.01"]["tpr_interval"][0])
    assert rows[0]["tpr_at_fpr_1e-05"] == ""  # not measurable with 1,200 non-members


def _browser():
    return next(
        (shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome") if shutil.which(name)), None
    )


@pytest.mark.skipif(_browser() is None, reason="no headless browser installed (Debian: apt-get install chromium)")
def test_report_renders_in_headless_chromium(tmp_path):
    page = tmp_path / "report.html"
    page.write_text(_report())
    shot = tmp_path / "report.png"
    command = [_browser(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    command += ["--window-size=1200,2600", f"--screenshot={shot}", page.as_uri()]
    subprocess.run(command, check=True, capture_output=True, timeout=HANG_GUARD_S)
    from matplotlib.image import imread

    pixels = imread(shot)
    assert pixels.shape[:2] == (2600, 1200)
    drawn = (pixels[:, :, :3] < 0.9).any(axis=2)  # anything not white
    assert drawn[:300].mean() > 0.005 and drawn[300:1500].mean() > 0.02  # title and table, then the ROC figures


def test_delta_is_stated_and_scores_are_readable():
    from lira_jax.audit.report.html_report import _score

    metrics, curves, examples, _ = _audit()
    for values in metrics["attacks"].values():
        values["epsilon_lower_bound"]["delta"] = 1e-6
    page = build_report(metrics, curves, title="t", examples=examples)
    assert "ε lower bound (δ = 1e-06)" in page and "at δ = 1e-06" in page
    assert "log-likelihood" in page  # what lira_online's scores in the examples table are
    assert [_score(value) for value in (6.304, -40.57, 0.4991, -12345.6, 1.5e7, 0.0, float("nan"))] == [
        "6.30",
        "\u221240.6",
        "0.499",
        "\u221212,346",
        "1.50e+07",
        "0.00",
        "",
    ]
