"""`python -m lira_jax.study NAME RUN ... [--out DIR]`: five studies on trained run folders.

    defences RUN1 RUN2 ...   one row per run (one defence each): train and test accuracy, their gap, ε if the
                             run records one, AUC and TPR at 0.1% FPR (with its interval) of every attack
    gap RUN [RUN ...]        per target model: LiRA online's TPR at 0.1% FPR against its accuracy and loss gaps
                             (several runs: their targets pooled, each scored against its own run's models)
    shadows RUN              LiRA with 1, 2, 4, ..., M−1 shadow models per target
    violins RUN              φ of members and non-members, split by correct and wrong predictions, and every
                             attack on all examples against on correctly classified examples only
    dp-audit RUN             the accounted ε against many-run and one-run ε lower bounds from the run's
                             canaries (--confidence C, default 0.95); with --check, exit status 1 when a bound
                             exceeds the accounted ε (consistent: false: an implementation or accounting bug)

Each writes DIR/NAME.md (the table it prints), DIR/NAME.json and DIR/NAME.png (dp-audit: dp_audit.*). DIR defaults to
RUN/study-NAME, and for several runs to study-NAME in their common parent folder. Every input is
checked before anything is computed or written: bad input is one line on stderr and exit status 2.
The studies live in lira_jax/studies/, one module each.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lira_jax.audit.inputs.targets import parse_integers
from lira_jax.errors import ArgumentParser, UserError, exits_cleanly
from lira_jax.studies.runner import STUDIES, run_study


@exits_cleanly
def main(argv: Sequence[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m lira_jax.study", description=__doc__.splitlines()[0])
    parser.add_argument("name", help=f"which study: {', '.join(STUDIES)}")
    parser.add_argument("runs", nargs="+", type=Path, help="run folder(s); several for defences and gap")
    parser.add_argument("--out", type=Path, help="output folder (default: RUN/study-NAME)")
    parser.add_argument("--targets", default="all", help="gap, shadows, violins: last, all, I,J,... or A:B")
    parser.add_argument("--counts", help="shadows: shadow counts I,J,... (default 1, 2, 4, ..., M−1)")
    parser.add_argument("--seed", type=int, default=0, help="shadows, dp-audit: seed of the random model subsets")
    parser.add_argument("--confidence", type=float, default=0.95, help="dp-audit: confidence of its verdict")
    parser.add_argument("--check", action="store_true", help="dp-audit: exit 1 when consistent is false")
    args = parser.parse_args(argv)
    if args.check and args.name != "dp-audit":
        raise UserError("--check is an option of dp-audit")
    data = run_study(
        args.name,
        args.runs,
        args.out,
        targets=args.targets,
        seed=args.seed,
        counts=parse_integers(args.counts, "--counts"),
        confidence=args.confidence,
    )
    return 1 if args.check and data["consistent"] is False else 0


if __name__ == "__main__":
    raise SystemExit(main())
