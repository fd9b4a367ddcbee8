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


def test_candidates_follow_what_was_measured_fastest_on_each_platform():
    config = Config()
    small, large = (8, 8, 1), (28, 28, 1)
    assert batching.candidates(config, "cpu", small, 3e5) == [
        ("vmap", "matmul"),
        ("loop", "matmul"),
        ("host", "native"),
    ]
    assert batching.candidates(config, "cpu", large, 4e6) == [
        ("host", "native"),
        ("loop", "matmul"),
        ("vmap", "matmul"),
    ]
    resnet18, fastnet = (
        batching.candidates(config, "gpu", (32, 32, 3), 1.1e9),
        batching.candidates(config, "gpu", large, 8e6),
    )
    assert resnet18[0] == ("loop", "native") and fastnet[0] == ("vmap", "native")
    assert len(resnet18) == len(fastnet) == 4 and all(way != "host" for way, _ in resnet18 + fastnet)


def test_fixed_keys_filter_the_candidates():
    def fixed(batching_key: str = "auto", conv: str = "auto") -> Config:
        return dataclasses.replace(
            Config(), train=TrainConfig(model_batching=batching_key), model=ModelConfig(conv=conv)
        )

    shape = (28, 28, 1)
    assert batching.candidates(fixed("loop", "native"), "cpu", shape, 4e6) == [("loop", "native")]
    assert batching.candidates(fixed("host"), "cpu", shape, 4e6) == [("host", "native")]
    assert batching.candidates(fixed(conv="native"), "cpu", shape, 4e6) == [("host", "native")]
    assert batching.candidates(fixed("vmap"), "gpu", shape, 1.1e9) == [("vmap", "native"), ("vmap", "matmul")]
    assert batching.candidates(fixed("host"), "gpu", shape, 1.1e9) == [("host", "native"), ("host", "matmul")]
    assert batching.default_choice(fixed(conv="matmul"), "gpu", shape, 1.1e9) == ("loop", "matmul")


@pytest.fixture(scope="module")
def chunk_trainer():
    dataset = load_dataset("digits", limit=120)
    config = Config(model=ModelConfig(width=4), train=TrainConfig(num_models=4, epochs=1))
    model = build_model(config.model, dataset.num_classes, dataset.images.shape[1:], jnp.float32, "matmul")
    views = tuple(parse_views(["identity"], dataset.images.shape[1:]))
    plan = trainer.Plan(config, model, (), views, 0, dataset.num_classes, forward_flops=1e6)
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
