"""`python -m lira_jax.study dp-audit RUN` on synthetic canary run folders (docs/run_folder.md's canaries.json)."""

import json

import pytest
from run_folders import write_canary_run

from lira_jax.study import main


@pytest.fixture(scope="module")
def strong_canaries(tmp_path_factory):
    """Canaries whose membership raises their logit by 6: any honest ε ≥ the bounds must be large."""
    return write_canary_run(tmp_path_factory.mktemp("dp") / "run", canary_signal=6.0)


def test_non_private_canaries_give_a_many_run_bound_above_1(strong_canaries, capsys):
    assert main(["dp-audit", str(strong_canaries), "--check"]) == 0
    out = strong_canaries / "study-dp-audit"
    assert sorted(path.name for path in out.iterdir()) == ["dp_audit.json", "dp_audit.md", "dp_audit.png"]
    record = json.loads((out / "dp_audit.json").read_text())
    assert record["epsilon_accounted"] is None and record["consistent"] is True
    bounds = record["epsilon_lower_bound"]
    assert bounds["many_runs"]["epsilon"] > 1 and bounds["one_run"]["epsilon"] > 0.5
    assert bounds["many_runs"]["confidence"] == bounds["one_run"]["confidence"] == 0.975  # two bounds, verdict at 0.95
    counts = bounds["many_runs"]["counts"]
    assert sum(counts.values()) == 8 * 64  # the counting half's (model, canary) trials only
    assert record["canaries"] == {"count": 64, "kind": "mislabeled"}
    assert "consistent: true" in capsys.readouterr().out


def test_a_bound_above_the_accounted_epsilon_is_inconsistent(tmp_path, capsys):
    run = write_canary_run(tmp_path / "run", canary_signal=6.0, epsilon=0.2)
    assert main(["dp-audit", str(run), "--out", str(tmp_path / "audit")]) == 0  # reported; --check makes it fail
    assert "consistent: false" in capsys.readouterr().out
    assert main(["dp-audit", str(run), "--out", str(tmp_path / "checked"), "--check"]) == 1
    record = json.loads((tmp_path / "checked" / "dp_audit.json").read_text())
    assert record["consistent"] is False and record["epsilon_accounted"] == 0.2 and record["delta"] == 1e-5


def test_canaries_without_signal_are_consistent_with_a_small_epsilon(tmp_path):
    run = write_canary_run(tmp_path / "run", canary_signal=0.0, epsilon=0.2)
    assert main(["dp-audit", str(run), "--check"]) == 0
    bounds = json.loads((run / "study-dp-audit" / "dp_audit.json").read_text())["epsilon_lower_bound"]
    assert bounds["many_runs"]["epsilon"] <= 0.2 and bounds["one_run"]["epsilon"] <= 0.2


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ([], "has no canaries.json"),
        (["--confidence", "1.5"], "--confidence must be a number in (0, 1)"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(tmp_path, capsys, arguments, message):
    run = write_canary_run(tmp_path / "run")
    if not arguments:
        (run / "canaries.json").unlink()
    assert main(["dp-audit", str(run), *arguments]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and message in err and len(err.strip().splitlines()) == 1
    assert not (run / "study-dp-audit").exists()


def test_check_belongs_to_dp_audit(strong_canaries, capsys):
    assert main(["violins", str(strong_canaries), "--check"]) == 2
    assert "--check is an option of dp-audit" in capsys.readouterr().err
