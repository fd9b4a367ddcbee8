"""`python -m lira_jax.study NAME RUN ... [--out DIR]`: four studies on trained run folders.

    defences RUN1 RUN2 ...   one row per run (one defence each): train and test accuracy, their gap, ε if the
                             run records one, AUC and TPR at 0.1% FPR (with its interval) of every attack
    gap RUN [RUN ...]        per target model: LiRA online's TPR at 0.1% FPR against its accuracy and loss gaps
                             (several runs: their targets pooled, each scored against its own run's models)
    shadows RUN              LiRA with 1, 2, 4, ..., M−1 shadow models per target
    violins RUN              φ of members and non-members, split by correct and wrong predictions, and every
                             attack on all examples against on correctly classified examples only

Each writes DIR/NAME.md (the table it prints), DIR/NAME.json and DIR/NAME.png. DIR defaults to
RUN/study-NAME, and for several runs to study-NAME in their common parent folder. Every input is
checked before anything is computed or written: bad input is one line on stderr and exit status 2.
The studies live in lira_jax/studies/, one module each.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lira_jax.audit.inputs.targets import parse_integers
from lira_jax.errors import ArgumentParser, exits_cleanly
from lira_jax.studies.runner import STUDIES, run_study


@exits_cleanly
def main(argv: Sequence[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m lira_jax.study", description=__doc__.splitlines()[0])
    parser.add_argument("name", help=f"which study: {', '.join(STUDIES)}")
    parser.add_argument("runs", nargs="+", type=Path, help="run folder(s); several for defences and gap")
    parser.add_argument("--out", type=Path, help="output folder (default: RUN/study-NAME)")
    parser.add_argument("--targets", default="all", help="gap, shadows, violins: last, all, I,J,... or A:B")
    parser.add_argument("--counts", help="shadows: shadow counts I,J,... (default 1, 2, 4, ..., M−1)")
    parser.add_argument("--seed", type=int, default=0, help="shadows: seed of the random shadow subsets")
    args = parser.parse_args(argv)
    run_study(
        args.name,
        args.runs,
        args.out,
        targets=args.targets,
        seed=args.seed,
        counts=parse_integers(args.counts, "--counts"),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
