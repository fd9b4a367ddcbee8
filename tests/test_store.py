"""The run folder's write side: atomic writes, the user's umask, full disks, claims of models, divergence."""

import errno
import os
import shutil
import signal
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lira_jax import store, writing
from lira_jax.claims import CLAIMS_FILE, Claims
from lira_jax.config import Config, with_overrides
from lira_jax.errors import UserError
from lira_jax.shadow.divergence import refuse_diverged

NUM_MODELS, NUM_EXAMPLES, NUM_VIEWS, NUM_CLASSES = 4, 6, 1, 3


def new_run(path: Path, config: Config | None = None) -> store.RunFolder:
    keep = np.array([[True, False] * 3, [False, True] * 3] * 2)
    labels = np.arange(NUM_EXAMPLES) % NUM_CLASSES
    return store.create(path, config or Config(), keep, labels, NUM_VIEWS, NUM_CLASSES)


def rows(count: int = 1, value: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    scores = np.full((count, NUM_EXAMPLES, NUM_VIEWS), value, np.float32)
    logits = np.full((count, NUM_EXAMPLES, NUM_VIEWS, NUM_CLASSES), value, np.float32)
    return scores, logits


def hidden_leftovers(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.rglob(".*") if path.name not in (".lock", CLAIMS_FILE))


@pytest.fixture
def umask_002():
    old = os.umask(0o002)
    yield
    os.umask(old)


def test_files_and_folders_get_the_users_umask(tmp_path, umask_002):
    run = new_run(tmp_path / "run")
    run.write_rows(np.array([0]), 0, *rows())
    run.mark_done([0], [{}])
    assert stat.S_IMODE((tmp_path / "run").stat().st_mode) == 0o775
    for name in ("models.json", "config.toml", "keep.npy", "scores.npy", "logits.npy"):
        assert stat.S_IMODE((tmp_path / "run" / name).stat().st_mode) == 0o664, name
    writing.write_atomically(tmp_path / "out.json", "{}")
    assert stat.S_IMODE((tmp_path / "out.json").stat().st_mode) == 0o664


def test_an_atomic_write_that_fails_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "metrics.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), writing.atomic_path(target) as temporary:
        temporary.write_text("half")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "old" and hidden_leftovers(tmp_path) == []
    with writing.atomic_path(tmp_path / "roc.png") as temporary:
        assert temporary.suffix == ".png" and temporary.parent == tmp_path  # savefig picks the format by it


def full_disk(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_full_disk_while_creating_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "posix_fallocate", full_disk)
    with pytest.raises(UserError, match="No space left on device; free some space and rerun the same command"):
        new_run(tmp_path / "run")
    assert list(tmp_path.iterdir()) == []


def test_a_run_that_cannot_fit_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    monkeypatch.setattr(writing, "free_bytes", lambda folder: 100)
    config = with_overrides(Config(), ["query.save_epochs=[1, 2]"])
    expected = r"needs 1.1 KiB on disk .*logits \[4, 6, 1, 3\] float32, 3 copies.* 100 bytes free"
    with pytest.raises(UserError, match=expected):
        new_run(tmp_path / "run", config)
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_when_rows_are_opened_or_marked_done_is_one_error_and_marks_nothing(tmp_path, monkeypatch):
    run = new_run(tmp_path / "run")
    before = (tmp_path / "run" / "models.json").read_text()
    with monkeypatch.context() as patch:
        patch.setattr(os, "posix_fallocate", full_disk)
        with pytest.raises(UserError, match="cannot write .*scores.npy: No space left on device"):
            run.write_rows(np.array([0]), 0, *rows())
    run.write_rows(np.array([0]), 0, *rows())
    with monkeypatch.context() as patch:
        patch.setattr(os, "replace", full_disk)
        with pytest.raises(UserError, match="cannot write .*models.json: No space left on device"):
            run.mark_done([0], [{}])
    assert (tmp_path / "run" / "models.json").read_text() == before and hidden_leftovers(tmp_path) == []
    run.mark_done([0], [{}])  # the same work goes through once there is space
    assert run.done().tolist() == [True, False, False, False]


def test_arrays_have_their_disk_blocks_from_the_start(tmp_path):
    new_run(tmp_path / "run")
    scores = tmp_path / "run" / "scores.npy"
    assert scores.stat().st_blocks * 512 >= scores.stat().st_size  # no holes: a mapped write needs no new block


@pytest.mark.parametrize(
    ("scores_value", "logits_value", "dtype"),
    [(np.nan, 0.5, "float32"), (0.5, np.inf, "float32"), (0.5, 1e5, "float16")],
    ids=["nan score", "inf logit", "float16 overflow"],
)
def test_a_model_with_non_finite_rows_is_never_marked_done(tmp_path, scores_value, logits_value, dtype):
    run = new_run(tmp_path / "run", with_overrides(Config(), [f"query.logits_dtype={dtype!r}"]))
    scores, logits = rows(2)
    scores[0, 3] = scores_value  # model 1's rows
    logits[0, 2, 0, 1] = logits_value
    run.write_rows(np.array([1, 2]), 0, scores, logits)
    assert run.mark_done([1, 2], [{"train_accuracy": 1.0}, {"train_accuracy": 1.0}]) == [1]
    assert run.done().tolist() == [False, False, True, False] and run.diverged() == [1]
    record = run.models()[1]
    assert record["diverged"] and not record["done"] and "train_accuracy" not in record
    with pytest.raises(UserError, match=r"^model\(s\) 1 diverged: .* lower train.learning_rate"):
        refuse_diverged(run)
    run.write_rows(np.array([1]), 0, *rows())  # trained again, finite this time
    assert run.mark_done([1], [{}]) == [] and run.diverged() == [] and "diverged" not in run.models()[1]


@pytest.mark.parametrize(
    "content",
    ["", "{", '{"models": 3}', '{"models": [{"index": 0}]}', '{"models": [{"done": "yes"}]}', "\xff"],
)
def test_a_broken_models_json_is_one_error(tmp_path, content):
    run = new_run(tmp_path / "run")
    (tmp_path / "run" / "models.json").write_text(content, errors="surrogateescape")
    with pytest.raises(UserError, match="models.json is not a JSON object with a list"):
        run.done()


HOLDER = """
import sys, time
from pathlib import Path
import numpy as np
from lira_jax.claims import Claims
claims = Claims(Path(sys.argv[1]))  # the claims last as long as this object (its open file)
claimed, note = claims.claim(np.array([1, 2]), np.zeros(4, bool))
print(claimed.tolist(), note, flush=True)
time.sleep(600)
"""


def test_claims_keep_two_processes_off_each_others_models_and_die_with_their_holder(tmp_path):
    run = new_run(tmp_path / "run")
    environment = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path / "run")], stdout=subprocess.PIPE, text=True, env=environment
    )
    try:
        assert holder.stdout.readline().strip() == "[1, 2] None"
        with Claims(run.path) as claims:
            claimed, note = claims.claim(np.arange(4), run.done())
        assert claimed.tolist() == [0, 3]
        assert note == (
            f"models 1:3 are being trained by another process (pid {holder.pid}): this process leaves them to it"
        )
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with Claims(tmp_path / "run") as claims:
        claimed, note = claims.claim(np.arange(4), run.done())
    assert claimed.tolist() == [0, 1, 2, 3] and note is None  # SIGKILL released them


def test_claims_skip_models_finished_meanwhile(tmp_path):
    run = new_run(tmp_path / "run")
    run.write_rows(np.array([0]), 0, *rows())
    run.mark_done([0], [{}])
    with Claims(run.path) as claims:
        assert claims.claim(np.arange(4), run.done())[0].tolist() == [1, 2, 3]


def test_an_unwritable_folder_is_one_error(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root writes anywhere")
    (tmp_path / "locked").mkdir(mode=0o500)
    with pytest.raises(UserError, match="cannot write"):
        new_run(tmp_path / "locked" / "run")


def test_a_real_full_disk(tmp_path):
    """On a 1 MiB tmpfs (needs root and mount; skipped elsewhere): refused up front, then marked nothing."""
    mount = tmp_path / "small"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root to mount a small tmpfs")
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        big = with_overrides(Config(), ["query.save_epochs=[1]"])
        keep = np.ones((4, 40_000), bool)
        keep[::2] = False
        with pytest.raises(UserError, match="the run needs 4.9 MiB on disk"):
            store.create(mount / "big", big, keep, np.arange(40_000) % 3, 1, 3)
        run = new_run(mount / "run")
        run.write_rows(np.array([0]), 0, *rows())
        (mount / "filler").write_bytes(b"\0" * writing.free_bytes(mount))
        with pytest.raises(UserError, match="No space left on device"):
            run.mark_done([0], [{}])
        assert run.done().tolist() == [False] * 4 and hidden_leftovers(mount) == []
        (mount / "filler").unlink()
        run.mark_done([0], [{}])
        assert run.done().tolist() == [True, False, False, False]
    finally:
        subprocess.run(["umount", str(mount)], check=True)
