"""Per-example results: means over member- and non-member targets, the share flagged at 0.1% FPR, ranking, CSV."""

import csv
import io

import numpy as np
import pytest

from lira_jax.audit.metrics import attack_metrics, roc_curve
from lira_jax.audit.report.per_example import (
    example_table,
    flag_threshold,
    most_exposed,
    rows,
    table_csv,
    top_lines,
)


def _scores(targets=40, examples=60, seed=0):
    rng = np.random.default_rng(seed)
    membership = rng.random((targets, examples)) < 0.5
    leak = np.linspace(0, 3, examples)  # example n leaks in proportion to n
    scores = rng.normal(size=(targets, examples)) + membership * leak
    return scores.astype(np.float32), membership, rng.integers(0, 10, examples)


def test_columns_by_hand():
    scores = np.array([[1.0, 5.0], [3.0, 7.0], [2.0, 0.0]], dtype=np.float32)
    membership = np.array([[True, False], [True, True], [False, False]])
    table = example_table({"a": scores}, membership, np.array([4, 2]), fpr=0.5)
    assert list(table) == ["example", "label", "members", "a_in", "a_out", "a_flagged"]
    np.testing.assert_array_equal(table["members"], [2, 1])
    np.testing.assert_allclose(table["a_in"], [2.0, 7.0])
    np.testing.assert_allclose(table["a_out"], [2.0, 2.5])
    # non-member scores 5, 2, 0: at FPR 0.5 one may be flagged, so the threshold is 2 (score > 2)
    assert flag_threshold(roc_curve(membership, scores), 0.5) == 2.0
    np.testing.assert_allclose(table["a_flagged"], [0.5, 1.0])


def test_pooled_flagged_share_is_tpr_at_the_fpr():
    scores, membership, labels = _scores()
    scores[:, :5] = np.round(scores[:, :5])  # ties among the scores too
    for fpr in (1e-3, 0.01, 0.1):
        table = example_table({"a": scores}, membership, labels, fpr=fpr)
        expected = attack_metrics(membership, scores, fpr_levels=(fpr,))["tpr_at_fpr"][str(fpr)]
        if expected is None:
            assert np.isnan(table["a_flagged"]).all()
            continue
        flagged = np.nansum(table["a_flagged"] * table["members"]) / membership.sum()
        assert flagged == pytest.approx(expected)


def test_no_member_target_and_unmeasurable_fpr_are_empty():
    scores, membership, labels = _scores(targets=4, examples=10)
    membership[:, 0] = False
    table = example_table({"a": scores}, membership, labels)  # 0.1% of ~20 non-members: not measurable
    assert np.isnan(table["a_in"][0]) and np.isnan(table["a_flagged"]).all()
    text = table_csv(table)
    parsed = list(csv.DictReader(io.StringIO(text)))
    assert len(parsed) == 10 and parsed[0]["a_in"] == "" and parsed[0]["members"] == "0"
    assert rows(table, [0])[0]["a_in"] is None


def test_most_exposed_ranks_the_leakiest_first():
    scores, membership, labels = _scores(targets=200, examples=60)
    table = example_table({"lira": scores}, membership, labels, fpr=0.01)
    top = most_exposed(table, "lira", 5)
    assert min(top) >= 45  # the examples with the largest leak
    lines = top_lines(table, "lira", 3)
    assert len(lines) == 5 and lines[2].split()[0] == str(top[0])


def test_csv_equals_a_cell_by_cell_writer():
    scores, membership, labels = _scores(targets=6, examples=30)
    table = example_table({"a": scores, "b": -scores * 1e7}, membership, labels)
    table["a_in"][:3] = [np.nan, np.inf, -1.23456789e-12]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(table)
    for row in range(30):
        cells = [column[row] for column in table.values()]
        writer.writerow(["" if np.isnan(c) else f"{c:.6g}" if c.dtype.kind == "f" else int(c) for c in cells])
    assert table_csv(table) == out.getvalue()
    assert table_csv({"example": np.arange(0), "a_in": np.zeros(0)}) == "example,a_in\n"
    assert table_csv({"a": np.array([np.nan, 1.0]), "b": np.array([np.nan, np.nan])}) == "a,b\n,\n1,\n"
