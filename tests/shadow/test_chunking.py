"""`models_per_step = "auto"`: the largest chunk whose compiled epoch fits memory and, on CPU, the cache."""

import jax
import jax.numpy as jnp
import pytest

from lira_jax.config import Config, ModelConfig
from lira_jax.shadow import devices, engine, trainer
from lira_jax.shadow.augment import parse_views
from lira_jax.shadow.data import load_dataset, make_keep
from lira_jax.shadow.models import build_model


@pytest.fixture(scope="module")
def chunk_trainer():
    dataset = load_dataset("digits", limit=120)
    config = Config(model=ModelConfig(width=4))
    model = build_model(config.model, dataset.num_classes, dataset.images.shape[1:], jnp.float32, "matmul")
    views = tuple(parse_views(["identity"], dataset.images.shape[1:]))
    plan = trainer.Plan(config, model, (), views, 0, dataset.num_classes, forward_flops=1e6)
    keep = make_keep(8, len(dataset.labels), seed=0)
    return trainer.ChunkTrainer(plan, dataset, keep, engine.model_mesh())


def scratch_bytes(compiled) -> int:
    return compiled.memory_analysis().temp_size_in_bytes


def test_auto_on_cpu_keeps_the_temporaries_in_the_cache(chunk_trainer, monkeypatch):
    two = chunk_trainer.train_epoch.lower(*chunk_trainer._epoch_arguments(2)).compile()
    monkeypatch.setattr(devices, "cpu_cache_bytes", lambda: scratch_bytes(two))
    size = chunk_trainer.chunk_size("auto", 8)
    assert 1 <= size <= 2 and scratch_bytes(chunk_trainer.compiled_epochs[size]) <= scratch_bytes(two)
    assert chunk_trainer.chunk_size(3, 8) == 3  # a fixed size is taken as it is

    monkeypatch.setattr(devices, "cpu_cache_bytes", lambda: 1)  # nothing fits: one model per device
    assert chunk_trainer.chunk_size("auto", 8) == jax.local_device_count()
