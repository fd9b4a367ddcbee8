"""The ordinary attack leaves a run's canaries (RUN/canaries.json) out and says so."""

import json
import shutil

import numpy as np
import pytest
from run_folders import write_canary_run

from lira_jax.attack import main
from lira_jax.studies.common import open_run
from lira_jax.studies.runner import STUDIES

ATTACKS = "lira_online,rmia_offline,global_threshold"


def test_attack_scores_only_the_ordinary_examples(tmp_path, capsys):
    run = write_canary_run(tmp_path / "run", num_canaries=20, num_examples=100)
    plain = tmp_path / "plain"  # the same run without its canaries: what the attack must see
    shutil.copytree(run, plain)
    (plain / "canaries.json").unlink()
    for name in ("keep", "labels", "logits"):
        array = np.load(run / f"{name}.npy")
        np.save(plain / f"{name}.npy", array[:100] if name == "labels" else array[:, :100])
    (plain / "scores.npy").unlink()
    assert main([str(run), "--attacks", ATTACKS]) == 0
    printed = capsys.readouterr().out
    assert "20 canaries left out (canaries.json)" in printed.splitlines()
    assert main([str(plain), "--attacks", ATTACKS]) == 0
    with_canaries, without = (json.loads((folder / "metrics.json").read_text()) for folder in (run, plain))
    assert with_canaries["canaries_excluded"] == 20 and "canaries_excluded" not in without
    assert with_canaries["num_examples"] == without["num_examples"] == 100
    assert str(run / "canaries.json") in with_canaries["inputs"]["files"]
    for name in ATTACKS.split(","):  # RMIA's population too: the same numbers as without the canaries
        assert with_canaries["attacks"][name]["auc"] == pytest.approx(without["attacks"][name]["auc"], abs=1e-12)


@pytest.mark.parametrize(
    ("canaries", "message"),
    [
        ("{", "not readable JSON"),
        ('{"count": 0, "kind": "noise", "indices": []}', "count must be an integer"),
        ('{"count": 20, "kind": "noise", "indices": [0]}', "indices must be the last 20"),
    ],
)
def test_bad_canaries_json_exits_2(tmp_path, capsys, canaries, message):
    run = write_canary_run(tmp_path / "run", num_canaries=20, num_examples=100)
    (run / "canaries.json").write_text(canaries)
    assert main([str(run), "--attacks", ATTACKS]) == 2
    assert message in capsys.readouterr().err
    assert not (run / "metrics.json").exists()


def test_studies_leave_canaries_out_but_dp_audit(tmp_path):
    run = write_canary_run(tmp_path / "run", num_canaries=20, num_examples=100)
    assert open_run(run).num_examples == 100 and open_run(run).labels.shape == (100,)
    assert open_run(run, with_canaries=True).num_examples == 120
    assert STUDIES["dp-audit"].canaries and not any(
        study.canaries for name, study in STUDIES.items() if name != "dp-audit"
    )
