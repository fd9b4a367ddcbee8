"""The DP audit on trained runs (issue 28 §4): it catches a broken DP-SGD, passes the honest one, and finds
the leak of non-private training. Canaries: 128 mislabeled copies of digits, each in half of the models."""

import json

import pytest
from conftest import tiny_settings
from run_folders import write_dp_canary_run

from lira_jax.study import main as study
from lira_jax.train import main as train


def audit(run, capsys) -> tuple[int, dict]:
    """(exit code of `study dp-audit RUN --check`, dp_audit.json)."""
    code = study(["dp-audit", str(run), "--out", str(run / "audit"), "--check"])
    capsys.readouterr()
    return code, json.loads((run / "audit" / "dp_audit.json").read_text())


@pytest.mark.slow
def test_the_audit_catches_noise_a_thousand_times_smaller_than_accounted_and_passes_the_honest_run(tmp_path, capsys):
    """σ = 40 accounted (ε ≈ 0.09 at δ = 1e-5 for 10 epochs); the broken engine adds σ / 1000. On 2026-12-08
    (2-core CPU) the broken run's one-run bound read 0.46, five times the accounted ε; the honest run's 0."""
    runs = {}
    for name, divisor in (("broken", 1000.0), ("honest", 1.0)):
        runs[name] = write_dp_canary_run(
            tmp_path / name, noise_divisor=divisor, num_models=32, canaries=128, noise_multiplier=40.0, epochs=10
        )
    code, broken = audit(runs["broken"], capsys)
    assert broken["consistent"] is False and code == 1
    bounds = broken["epsilon_lower_bound"]
    assert max(bounds["many_runs"]["epsilon"], bounds["one_run"]["epsilon"]) > broken["epsilon_accounted"]
    code, honest = audit(runs["honest"], capsys)
    assert honest["consistent"] is True and code == 0
    assert honest["epsilon_accounted"] == pytest.approx(broken["epsilon_accounted"])  # the same promise


@pytest.mark.slow
def test_non_private_training_leaks_canaries_well_above_epsilon_1(tmp_path, capsys):
    """32 tiny CNNs, 20 epochs, no DP-SGD: on 2026-12-08 the many-run bound read 3.8 (one-run 1.6)."""
    run = tmp_path / "open"
    settings = tiny_settings("train.num_models=32", "train.epochs=20", "canaries.count=128")
    assert train(["--out", str(run), *settings, "--quiet", "--no-attack"]) == 0
    code, result = audit(run, capsys)
    assert result["epsilon_accounted"] is None and result["consistent"] is True and code == 0
    assert result["epsilon_lower_bound"]["many_runs"]["epsilon"] > 2
