"""The list of studies, and `run_study`: check the inputs, compute a study, draw its figure, write and print it."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lira_jax.audit.inputs.arguments import integer
from lira_jax.errors import UserError
from lira_jax.outputs import refuse_run_files
from lira_jax.studies.common import StudyResult, open_run
from lira_jax.studies.defences import plot_defences, study_defences
from lira_jax.studies.dp_audit import plot_dp_audit, study_dp_audit
from lira_jax.studies.gap import plot_gap, study_gap
from lira_jax.studies.shadows import plot_shadows, study_shadows
from lira_jax.studies.violins import plot_violins, study_violins
from lira_jax.writing import make_folder, output_set, strict_json, write_atomically


@dataclass(frozen=True)
class Study:
    """compute(runs, options) if `several` else compute(run, options) -> (text, data, drawing);
    draw(drawing, path) writes the PNG (matplotlib is imported there, once the numbers are in); stem: the
    output files' name (default: the study's); canaries: reads the run's canaries, which the others leave out."""

    compute: Callable[..., StudyResult]
    draw: Callable[[dict[str, Any], Path], None]
    several: bool  # takes one or more run folders, else exactly one
    stem: str | None = None
    canaries: bool = False


STUDIES: dict[str, Study] = {
    "defences": Study(study_defences, plot_defences, several=True),
    "dp-audit": Study(study_dp_audit, plot_dp_audit, several=False, stem="dp_audit", canaries=True),
    "gap": Study(study_gap, plot_gap, several=True),
    "shadows": Study(study_shadows, plot_shadows, several=False),
    "violins": Study(study_violins, plot_violins, several=False),
}


def default_out(name: str, paths: Sequence[Path]) -> Path:
    """RUN/study-NAME; for several runs, study-NAME in their common parent folder."""
    if len(paths) == 1:
        return paths[0] / f"study-{name}"
    return Path(os.path.commonpath([path.resolve() for path in paths])) / f"study-{name}"


def run_study(name: str, paths: Sequence[str | Path], out: str | Path | None = None, **options: Any) -> dict[str, Any]:
    """Runs study `name` on the run folders, writes OUT/STEM.{md,json,png} (STEM: the study's stem, else NAME),
    prints the table and returns the JSON data. options: targets ("all"), seed (0), counts (None), confidence
    (0.95). Every input is checked before anything is written."""
    if name not in STUDIES:
        raise UserError(f"unknown study {name!r}; known: {', '.join(STUDIES)}")
    study = STUDIES[name]
    paths = [Path(path) for path in paths]
    if not paths or (not study.several and len(paths) != 1):
        raise UserError(
            f"the {name} study takes {'one or more run folders' if study.several else 'one run folder'}, "
            f"got {len(paths)}"
        )
    if len({path.resolve() for path in paths}) != len(paths):
        raise UserError(f"the {name} study got the same run folder twice")
    out = Path(out) if out else default_out(name, paths)
    stem = study.stem or name
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a folder")
    for suffix in ("md", "json", "png"):
        refuse_run_files(out / f"{stem}.{suffix}", paths, "--out")
    options = {"targets": "all", "seed": 0, "counts": None, "confidence": 0.95, **options}
    options["seed"] = integer(options["seed"], "--seed", 0)  # numpy's seeds are non-negative
    runs = [open_run(path, with_canaries=study.canaries) for path in paths]
    text, data, drawing = study.compute(runs if study.several else runs[0], options)

    created = not out.exists()
    make_folder(out)
    try:
        with output_set():  # the figure, table and data of one study, moved into place together
            study.draw(drawing, out / f"{stem}.png")
            write_atomically(out / f"{stem}.md", f"# {name}: {', '.join(str(path) for path in paths)}\n\n{text}\n")
            record = {"study": name, "runs": [str(p) for p in paths], **data}
            write_atomically(out / f"{stem}.json", json.dumps(strict_json(record), indent=1, allow_nan=False) + "\n")
    except BaseException:
        if created and not any(out.iterdir()):
            out.rmdir()  # nothing written: the folder made for the set goes with it
        raise
    print(text)
    return data
