"""train.model_batching = "auto" / model.conv = "auto": candidates, the skip for short runs, the measurement
and its cache (shadow/batching.py)."""

import dataclasses

import jax.numpy as jnp
import pytest

from lira_jax.config import Config, ModelConfig, TrainConfig
from lira_jax.shadow import batching, engine, trainer
from lira_jax.shadow.augment import parse_views
from lira_jax.shadow.data import load_dataset, make_keep
from lira_jax.shadow.models import build_model


def test_candidates_start_with_the_default_and_take_native_convs_on_cpu_only_host_stepped():
    config = Config()
    assert batching.candidates(config, "cpu") == [("vmap", "matmul"), ("loop", "matmul"), ("host", "native")]
    assert batching.candidates(config, "gpu")[0] == ("vmap", "native") and len(batching.candidates(config, "gpu")) == 4
    fixed = dataclasses.replace(config, train=TrainConfig(model_batching="loop"), model=ModelConfig(conv="native"))
    assert batching.candidates(fixed, "cpu") == [("loop", "native")]
    host = dataclasses.replace(config, train=TrainConfig(model_batching="host"))
    assert batching.candidates(host, "cpu") == [("host", "native")]


@pytest.fixture(scope="module")
def chunk_trainer():
    dataset = load_dataset("digits", limit=120)
    config = Config(model=ModelConfig(width=4), train=TrainConfig(num_models=4, epochs=1))
    model = build_model(config.model, dataset.num_classes, dataset.images.shape[1:], jnp.float32, "cpu")
    views = tuple(parse_views(["identity"], dataset.images.shape[1:]))
    plan = trainer.Plan(config, model, (), views, 0, dataset.num_classes)
    return trainer.ChunkTrainer(plan, dataset, make_keep(4, 120, seed=0), engine.model_mesh(4))


def test_short_runs_keep_the_defaults_without_measuring(chunk_trainer, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    choice = batching.choose(chunk_trainer, 4, 4)
    assert (choice.model_batching, choice.conv, choice.timings) == ("vmap", "matmul", {})
    assert "not measured" in choice.line() and not batching.cache_path().exists()


def test_a_long_run_measures_each_candidate_once(chunk_trainer, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(batching, "SKIP_BELOW_SECONDS", 0.0)
    choice = batching.choose(chunk_trainer, 4, 4)
    assert set(choice.timings) == {"vmap+matmul", "loop+matmul", "host+native"}
    for timing in choice.timings.values():
        assert min(timing["s_per_step"], timing["s_per_query_batch"], timing["compile_s"]) > 0
        expected = chunk_trainer.epochs * chunk_trainer.steps * timing["s_per_step"] + timing["s_per_query_batch"]
        assert timing["s_per_chunk"] == pytest.approx(expected, abs=2e-3)  # 120 examples: one query batch
    fastest = min(choice.timings, key=lambda name: choice.timings[name]["s_per_chunk"])
    assert f"{choice.model_batching}+{choice.conv}" == fastest and "fastest" in choice.reason
    again = batching.choose(chunk_trainer, 4, 4)  # from the cache, not measured again
    assert (again.model_batching, again.timings) == (choice.model_batching, choice.timings)
    assert "measured before" in again.reason
