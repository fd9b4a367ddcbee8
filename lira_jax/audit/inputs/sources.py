"""What the attack reads, said and guarded: opening an input of any layout, what its outputs must not touch,
the record of every file read (metrics.json's "inputs" and the line printed under the table), and a run's
done models (`done_model_arrays`) and ML-Leaks adversary 2's shadow run (`load_transfer`).

Layouts: our run folder, a folder of plain logits (`lira_jax.store.load_run`), the LiRA reference code's
experiment folders and its PyTorch port's (`lira_jax.audit.inputs.readers.reference_run`). A trained run's
scores.npy is checked against its logits.npy (`lira_jax.audit.inputs.phi.check_scores`); a plain folder's φ is
computed from its logits, a scores.npy beside them not read. Nothing here imports JAX.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lira_jax.audit.inputs.checked import TransferShadow, check_logits
from lira_jax.audit.inputs.phi import check_scores, streamed_phi
from lira_jax.audit.inputs.readers import reference_run
from lira_jax.audit.streaming import ExampleArray, subset_models
from lira_jax.errors import UserError
from lira_jax.outputs import Protected
from lira_jax.store import epoch_folder, load_run, scores_shape


def open_source(run_dir: Path, epoch: int | None, source: str, labels_path: str | Path | None) -> dict[str, Any]:
    """`store.load_run`'s dict for our run folders (and folders of plain logits), or for the LiRA reference
    code's experiment folders and its PyTorch port (`readers.reference_run`), with config_text, files (every
    file read), folders (model folders no output may enter), phi (where φ comes from) and notes."""
    if source == "run":
        if labels_path is not None:
            raise UserError("--labels is for --format lira-reference; a run folder has labels.npy")
        run = load_run(run_dir, epoch)
        config = run_dir / "config.toml"
        phi = run["phi"]
        if run["scores"] is not None and run["logits"] is not None:
            labels = check_logits(run["logits"], run["labels"], scores_shape(run))
            phi = check_scores(run["scores"], run["logits"], labels, epoch_folder(run_dir, epoch))
        text = config.read_text(errors="replace") if config.is_file() else None
        summary = ", ".join(str(file) for file in run["files"])
        return {**run, "config_text": text, "folders": [], "phi": phi, "notes": [], "summary": summary}
    if source != "lira-reference":
        raise UserError(f"--format must be run or lira-reference, got {source!r}")
    if epoch is not None:
        raise UserError("--epoch reads our run folders' snapshots; a reference folder's last epoch is read")
    return reference_run(run_dir, labels_path)


def protected_inputs(run: dict[str, Any], run_dir: Path, source: str, shadow_run: str | Path | None) -> Protected:
    """What no output of the attack may touch: every file read, a run folder's own files and checkpoints
    (also those of the --shadow-run), and the model folders of the reference layouts."""
    protected = Protected().add_files(run["files"], "an input of this command")
    if source == "run":
        protected.add_run(run_dir)
    if shadow_run is not None:
        protected.add_run(shadow_run)
    protected.folders.update({Path(folder): f"the model folder {folder} of the input" for folder in run["folders"]})
    return protected


def inputs_record(run: dict[str, Any], shadow_run: str | Path | None = None) -> dict[str, Any]:
    """metrics.json's "inputs": the files read in a line (summary), every file read (as given, with those of
    the --shadow-run), where φ comes from, and notes."""
    files = [str(file) for file in run["files"]]
    summary = run["summary"]
    if shadow_run is not None:
        other = [str(file) for file in load_run(shadow_run)["files"]]
        files += other
        summary += f"; --shadow-run: {', '.join(other)}"
    return {"summary": summary, "files": files, "phi": run["phi"], "notes": list(run["notes"])}


def read_lines(record: dict[str, Any], invocation: str) -> list[str]:
    """The lines printed under the table: the files read, φ's source, the notes and the invocation id every
    output carries."""
    lines = [f"read {len(record['files'])} files: {record['summary']}", f"φ: {record['phi']}"]
    lines += [f"note: {note}" for note in record["notes"]]
    return [*lines, f"invocation {invocation} (in every output of this command)"]


def done_model_arrays(run: dict[str, Any]) -> tuple[ExampleArray, ExampleArray | None, np.ndarray]:
    """A `load_run` result restricted to its done models, read lazily: (scores float32[M', N, V], logits
    float[M', N, V, C] or None, keep bool[M', N]), M' = len(run["models"]). Without scores (a folder of
    plain logits), φ is computed from the logits as the attacks read them."""
    models = run["models"]
    keep = run["keep"][models]
    logits = run["logits"]
    if len(models) != run["keep"].shape[0]:
        logits = None if logits is None else subset_models(logits, models)
    if run["scores"] is None:
        return streamed_phi(logits, run["labels"]), logits, keep
    scores = run["scores"] if len(models) == run["keep"].shape[0] else subset_models(run["scores"], models)
    return scores, logits, keep


def load_transfer(shadow_run: str | Path, run_dir: Path) -> TransferShadow:
    """ML-Leaks adversary 2's shadow: the first finished model of another run, with its logits."""
    shadow_run = Path(shadow_run)
    if shadow_run.is_dir() and shadow_run.resolve() == run_dir.resolve():
        raise UserError(f"--shadow-run must be another run folder (trained on another data set), not {run_dir}")
    try:
        other = load_run(shadow_run)
        if other["logits"] is not None:  # the other run's own consistency: its one check, as it is opened here
            check_logits(other["logits"], other["labels"], scores_shape(other))
    except UserError as error:
        raise UserError(f"--shadow-run {shadow_run} is not a usable run folder: {error}") from None
    if other["logits"] is None:
        raise UserError(f"--shadow-run {shadow_run} has no logits.npy, which the attack model is trained on")
    return TransferShadow(other["logits"], other["keep"], other["models"][0])
