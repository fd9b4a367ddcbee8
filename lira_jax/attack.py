"""`python -m lira_jax.attack RUN`: every attack on a run folder, scored per target, pooled into one ROC.

Reads keep.npy bool[M, N], labels.npy int[N], scores.npy float32[M, N, V] (and logits.npy
float16|float32[M, N, V, C] when present); if models.json is there, only models marked done are used, and
a run trained here (config.toml) must have all of them done. No output may name one of the run's files.
With --epoch E, scores.npy and logits.npy come from the snapshot RUN/epochs/E/ instead. With --mask,
every attack reads the masked output (`lira_jax.audit.inputs.masking`): φ is recomputed from the masked logits.
A folder of plain logits (logits.npy [M, N, C] or [M, N, V, C], keep.npy bool or 0/1, labels.npy, no
scores.npy) is read too; --format lira-reference reads the LiRA reference code's experiment folders.
Writes RUN/metrics.json (docs/run_folder.md), RUN/roc.png, RUN/examples.csv (per example), RUN/metrics.csv and
RUN/report.html (RUN/epochs/E/ with --epoch, DIR with --target-model DIR: one model trained elsewhere,
logits.npy [N, C] or [N, V, C] and keep.npy bool[N], scored against every model of RUN as shadows, exactly
as RUN's last model would be), and prints a table (--top K: and the most exposed
examples). Every input is checked before anything is computed or written: a bad run folder is one line
on stderr and exit status 2. The work is `lira_jax.audit.evaluate.attack_folder`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lira_jax.audit.attacks.classifiers import MAX_ROWS
from lira_jax.audit.evaluate import AttackRun, attack_folder
from lira_jax.audit.inputs.arguments import names
from lira_jax.audit.inputs.checked import COUNTS, EQUALISED
from lira_jax.audit.inputs.targets import parse_integers
from lira_jax.audit.registry import ATTACKS
from lira_jax.errors import ArgumentParser, UserError, exits_cleanly


@exits_cleanly
def main(argv: Sequence[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m lira_jax.attack", description=__doc__.splitlines()[0])
    parser.add_argument(
        "run", type=Path, help="run folder with keep.npy, labels.npy and scores.npy or logits.npy (or see --format)"
    )
    parser.add_argument("--targets", help="last, all, I,J,... or A:B (default: all)")
    parser.add_argument("--json", type=Path, help="where to write metrics (default: RUN/metrics.json)")
    parser.add_argument("--plot", type=Path, help="where to draw the ROC (default: RUN/roc.png)")
    parser.add_argument(
        "--attacks", help=f"comma-separated subset of: {', '.join(ATTACKS)} (default: all that the folder allows)"
    )
    parser.add_argument("--lira-centre", choices=("median", "mean"), default="median")
    parser.add_argument(
        "--lira-counts",
        choices=COUNTS,
        default=EQUALISED,
        help="LiRA's shadow sets per (target, example): equalised in size (default: one shadow of the larger set"
        " dropped, which removes the balanced-keep bias), raw (every shadow), or reference (the LiRA reference"
        " code's plot.py: each set truncated to the smallest count over examples, in model order, and its"
        " fixed variance; docs/auditing.md)",
    )
    parser.add_argument("--rmia-a", type=float, default=0.3, help="offline RMIA's a (default 0.3)")
    parser.add_argument("--delta", type=float, default=1e-5, help="δ of the ε lower bound (default 1e-5)")
    parser.add_argument("--distributions", type=Path, help="also draw IN/OUT score histograms to this PNG")
    parser.add_argument("--examples", help="examples for --distributions, I,J,... (default: 4 most exposed)")
    parser.add_argument("--mask", help="mask the output before every attack: top:K, round:D or label")
    parser.add_argument("--epoch", type=int, help="attack the snapshot RUN/epochs/E (writes there by default)")
    parser.add_argument("--shadow-run", type=Path, help="ML-Leaks adversary 2: a run on another data set")
    parser.add_argument(
        "--classifier-rows", type=int, default=MAX_ROWS, help=f"training rows per attack model (default {MAX_ROWS})"
    )
    parser.add_argument(
        "--format",
        choices=("run", "lira-reference"),
        default="run",
        help="run: our run folder or a folder of plain logits (default); lira-reference: the LiRA reference "
        "code's experiment folders or its PyTorch port's",
    )
    parser.add_argument("--labels", type=Path, help="with --format lira-reference: the training labels (.npy)")
    parser.add_argument(
        "--target-model",
        type=Path,
        metavar="DIR",
        help="audit one model trained elsewhere (DIR: logits.npy [N, C] or [N, V, C], keep.npy bool[N]) "
        "against every model of RUN as shadows (writes into DIR by default)",
    )
    parser.add_argument("--top", type=int, default=0, metavar="K", help="also print the K most exposed examples")
    args = parser.parse_args(argv)
    if args.top < 0:
        raise UserError(f"--top must not be negative, got {args.top}")
    attacks = names(args.attacks, "--attacks", ATTACKS)
    if args.examples is not None and args.distributions is None:
        raise UserError("--examples chooses the examples of --distributions PATH, which was not given")
    asked = AttackRun(
        targets=args.targets,
        json_path=args.json,
        plot_path=args.plot,
        attacks=attacks,
        lira_centre=args.lira_centre,
        lira_counts=args.lira_counts,
        rmia_a=args.rmia_a,
        delta=args.delta,
        distributions_path=args.distributions,
        examples=parse_integers(args.examples, "--examples"),
        mask=args.mask,
        epoch=args.epoch,
        shadow_run=args.shadow_run,
        classifier_rows=args.classifier_rows,
        source=args.format,
        labels_path=args.labels,
        top=args.top,
        target_model=args.target_model,
    )
    attack_folder(args.run, asked)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
