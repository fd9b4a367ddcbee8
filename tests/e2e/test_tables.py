"""Tables and token ids through the whole command line, in process: train (host, vmap, loop; DP-SGD),
resume, and the attack on the run folder, the seam that does not change; and the bad inputs of such data,
each one line, exit 2, nothing written."""

import json

import numpy as np
import pytest

from lira_jax.attack import main as attack
from lira_jax.train import main as train

NUM_EXAMPLES = 60
SMALL = ["--quiet", "--no-attack"] + [
    part
    for setting in ("num_models=4", "models_per_step=4", "epochs=2", "batch_size=16")
    for part in ("--set", f"train.{setting}")
]
LIRA = ["--attacks", "lira_online,lira_offline"]  # the attack on the run folder, without its slower classifiers


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, str]:
    """npz sources: a float table [60, 6] in 3 classes and token ids [60, 5] below 12 in 3 classes."""
    folder = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    labels = np.arange(NUM_EXAMPLES) % 3
    table = rng.normal(size=(NUM_EXAMPLES, 6)).astype(np.float32) + labels[:, None]
    tokens = (rng.integers(0, 9, (NUM_EXAMPLES, 5)) + labels[:, None]).astype(np.int16)
    np.savez(folder / "table.npz", x=table, y=labels)
    np.savez(folder / "tokens.npz", x=tokens, y=labels)
    return {kind: f"data.source='npz:{folder / kind}.npz'" for kind in ("table", "tokens")}


def settings(*assignments: str) -> list[str]:
    return [*SMALL, *(part for assignment in assignments for part in ("--set", assignment))]


MLP = ("model.arch='mlp'", "model.hidden=[8]")
TRANSFORMER = ("model.arch='transformer'", "model.embed_dim=8", "model.heads=2", "model.layers=1")


def test_a_table_trains_resumes_and_is_attacked(data, tmp_path, capsys):
    out = tmp_path / "run"
    extra = ("train.checkpoint_minutes=0", "train.model_batching='host'")
    argv = ["--out", str(out), *settings(data["table"], *MLP, *extra)]
    assert train([*argv, "--models", "0:2"]) == 0
    assert train(argv) == 0  # resumes: models 0 and 1 are kept, 2 and 3 trained
    models = json.loads((out / "models.json").read_text())["models"]
    assert [record["done"] for record in models] == [True] * 4 and models[0]["train_accuracy"] > 0.5
    assert np.load(out / "scores.npy").shape == (4, NUM_EXAMPLES, 1)
    assert attack([str(out), *LIRA]) == 0
    assert "lira_online" in capsys.readouterr().out and (out / "metrics.json").is_file()


@pytest.mark.parametrize(
    ("kind", "net", "extra", "batching"),
    [
        ("tokens", TRANSFORMER, ("model.pooling='cls'", "model.dropout=0.1"), "vmap"),
        ("table", MLP, ("train.dp_sgd=true",), "loop"),
    ],
    ids=["tokens", "table-dp-sgd-loop"],
)
def test_token_ids_and_dp_sgd_on_a_table_train_and_are_attacked(data, tmp_path, capsys, kind, net, extra, batching):
    out = tmp_path / "run"
    argv = settings(data[kind], *net, *extra, f"train.model_batching='{batching}'")
    assert train(["--out", str(out), *argv]) == 0
    assert f"model batching {batching}" in capsys.readouterr().err
    assert np.isfinite(np.load(out / "scores.npy")).all()
    assert attack([str(out), *LIRA]) == 0 and "lira_offline" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("kind", "net", "extra", "message"),
    [
        ("table", MLP, ("train.augment=['flip']",), "train.augment = ['flip']: augmentations are for images, and"
         " this data is a table [N, D]"),
        ("tokens", TRANSFORMER, ("query.views=['identity', 'mirror']",), "views other than 'identity' are for"
         " images, and this data is token ids [N, T]"),
        ("tokens", TRANSFORMER, ("model.vocab_size=10",), "token id 10 is not below model.vocab_size = 10"),
        ("table", (), (), "model.arch = 'cnn' does not take table (float32[N, D]): use model.arch = 'mlp'"),
        ("tokens", MLP, (), "model.arch = 'mlp' does not take tokens (int32[N, T])"),
        ("tokens", ("model.arch='transformer'", "model.heads=3"), (), "must be a multiple of model.heads (3)"),
    ],
)  # fmt: skip
def test_bad_recipes_for_tables_and_tokens_are_one_line(data, tmp_path, capsys, kind, net, extra, message):
    out = tmp_path / "run"
    assert train(["--out", str(out), *settings(data[kind], *net, *extra)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error:") and "\n" not in error and message in error
    assert not out.exists()


def test_a_table_chunk_killed_after_a_checkpoint_resumes_from_it_bit_for_bit(data, tmp_path, monkeypatch):
    from lira_jax.shadow.checkpoints import ChunkCheckpoint
    from lira_jax.shadow.trainer import ChunkTrainer

    argv = settings(data["table"], *MLP, "train.checkpoint_minutes=0", "train.epochs=3")
    assert train(["--out", str(tmp_path / "reference"), *argv]) == 0
    write_chunk, restore, restored = ChunkTrainer.write_chunk, ChunkCheckpoint.restore, []

    def killed_before_writing(self, run, model_indices, states, snapshot=None):
        raise KeyboardInterrupt  # as a kill after the last epoch: the checkpoint of epoch 2 is left

    monkeypatch.setattr(ChunkTrainer, "write_chunk", killed_before_writing)
    assert train(["--out", str(tmp_path / "killed"), *argv]) == 130
    assert list((tmp_path / "killed" / "checkpoints").glob("chunk-*/2"))
    monkeypatch.setattr(ChunkTrainer, "write_chunk", write_chunk)

    def recorded_restore(self, abstract):
        restored.append(restore(self, abstract))
        return restored[-1]

    monkeypatch.setattr(ChunkCheckpoint, "restore", recorded_restore)
    assert train(["--out", str(tmp_path / "killed"), *argv]) == 0
    assert restored[0][0] == 2  # resumed after epoch 2 of 3
    for name in ("scores.npy", "logits.npy"):
        np.testing.assert_array_equal(np.load(tmp_path / "killed" / name), np.load(tmp_path / "reference" / name))
    assert not (tmp_path / "killed" / "checkpoints").exists()
