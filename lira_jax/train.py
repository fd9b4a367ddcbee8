"""`python -m lira_jax.train`: train the shadow models of a config into a run folder, then attack them.

    python -m lira_jax.train                                  # digits defaults -> runs/digits
    python -m lira_jax.train --config configs/cifar10_wrn28_2.toml --set train.num_models=64
    python -m lira_jax.train --out runs/x --models 0:16       # one slice of an existing or new run
    python -m lira_jax.train --status runs/x                  # which models are done
    python -m lira_jax.train --devices 2                      # shard over the first 2 local devices
    python -m lira_jax.train --distributed                    # one process per host (SLURM, TPU pods)

The same command resumes a killed run: finished models are kept, unfinished ones are trained again.
With several processes (docs/scaling.md), each trains its share of the unfinished models on its own
devices; process 0 creates the run folder first and runs the attack once all have finished.
On a CPU the command makes one JAX device per core, each training its own models (lira_jax/devices.py);
JAX_NUM_CPU_DEVICES=N or XLA_FLAGS=--xla_force_host_platform_device_count=N sets another count.
"""

import dataclasses
import math
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import jax
import numpy as np

from lira_jax import config as config_lib
from lira_jax import run_recipe, store
from lira_jax.audit.evaluate import run_attack
from lira_jax.claims import Claims
from lira_jax.errors import ArgumentParser, UserError, compact_ranges, exits_cleanly
from lira_jax.shadow import canaries, compile_cache, hosts
from lira_jax.shadow.data import Dataset, check_training_sets, load_dataset, make_keep
from lira_jax.shadow.devices import use_every_cpu_core
from lira_jax.shadow.divergence import refuse_diverged
from lira_jax.shadow.hyperparameters import draw, records
from lira_jax.shadow.recipe_models import GIVEN_NONE, GivenRecipe, recipe_record
from lira_jax.shadow.trainer import make_plan
from lira_jax.shadow.training_run import train_run

ACCURACIES = ("train_accuracy", "test_accuracy")  # what `--status` averages over the done models
ARRAYS_SOURCE = "arrays:"  # data.source of arrays given from Python: "arrays:" + their sha256


def parse_slice(text: str, num_models: int) -> np.ndarray:
    """`"A:B"` -> the model indices A..B-1, which must lie in [0, num_models)."""
    try:
        start_text, stop_text = text.split(":")
        start = int(start_text) if start_text else 0
        stop = int(stop_text) if stop_text else num_models
    except ValueError:
        raise UserError(f"--models expects A:B (e.g. 0:16), got {text!r}") from None
    if not 0 <= start < stop <= num_models:
        raise UserError(f"--models {text} is outside [0, {num_models}) or empty")
    return np.arange(start, stop)


def create_run(
    out: Path, config: config_lib.Config, dataset: Dataset, num_views: int, files: dict[str, str]
) -> store.RunFolder:
    """A new run folder at `out`: its keep matrix drawn from the seed, each model's hyperparameters recorded,
    and `files` ({name: text}: its recipe record, run_recipe.py, and canaries.json where it has them)."""
    num_models = config.train.num_models
    keep = make_keep(
        num_models,
        len(dataset.labels),
        seed=config.train.seed,
        mode=config.train.keep,
        probability=config.train.keep_probability,
    )
    check_training_sets(keep)
    hyperparameters = records(draw(config, np.arange(num_models)))
    return store.create(
        out,
        config,
        keep,
        dataset.labels,
        num_views,
        dataset.num_classes,
        [{"hyperparameters": values} for values in hyperparameters],
        files,
    )


def status(run: store.RunFolder) -> str:
    """A few lines on what is done in `run`: `train --status`, and the end of a `--models` slice."""
    models = run.models()
    done = [record for record in models if record["done"]]
    missing = [index for index, record in enumerate(models) if not record["done"]]  # "index" is the position
    lines = [f"{run.path}: {len(done)} of {len(models)} models done"]
    measured = [record for record in done if all(_is_number(record.get(key)) for key in ACCURACIES)]
    if measured:
        train, test = (np.mean([record[key] for record in measured]) for key in ACCURACIES)
        lines.append(f"mean train accuracy {train:.4f}, mean test accuracy {test:.4f}")
    if len(measured) < len(done):  # records of an older version, or edited by hand
        lines.append(f"{len(done) - len(measured)} done model(s) record no train and test accuracy")
    epsilons = [record["dp_epsilon"] for record in done if _is_number(record.get("dp_epsilon"))]
    if epsilons:
        deltas = {record.get("dp_delta") for record in done if _is_number(record.get("dp_delta"))}
        at = f" at delta {deltas.pop():g}" if len(deltas) == 1 else ""
        lines.append(f"DP-SGD: epsilon {min(epsilons):.3g} to {max(epsilons):.3g}{at}")
    if missing:
        lines.append(f"to train: {compact_ranges(missing)}")
    if run.diverged():
        lines.append(f"diverged (not done): {compact_ranges(run.diverged())}")
    return "\n".join(lines)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="python -m lira_jax.train", description=__doc__.split("\n")[0])
    parser.add_argument("--config", help="TOML config (default: the digits defaults, as configs/digits.toml)")
    parser.add_argument("--out", help="run folder (default: runs/<config name>)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override, e.g. train.epochs=2")
    parser.add_argument(
        "--models", metavar="A:B", help="train only models A..B-1 (job arrays); the attack waits for all"
    )
    parser.add_argument("--status", metavar="RUN", help="show which models of RUN are done, and exit")
    parser.add_argument("--devices", type=int, metavar="N", help="use the first N local devices (default: all)")
    hosts_group = parser.add_argument_group("several processes (docs/scaling.md)")
    hosts_group.add_argument("--coordinator", metavar="HOST:PORT", help="address of process 0's coordinator")
    hosts_group.add_argument("--num-processes", type=int, metavar="N", help="how many processes train the run")
    hosts_group.add_argument("--process-id", type=int, metavar="I", help="this process's index, 0..N-1")
    hosts_group.add_argument(
        "--distributed", action="store_true", help="read the processes from the cluster (SLURM, Open MPI, TPU pods)"
    )
    parser.add_argument("--no-attack", action="store_true", help="do not run the attack when all models are done")
    parser.add_argument("--quiet", action="store_true", help="no progress (what was chosen is still printed)")
    parser.add_argument(
        "--accept-model-change",
        action="store_true",
        help="resume although the source of the run's own model (model.arch = 'package.module:NAME') changed",
    )
    return parser


@dataclass(frozen=True)
class TrainJob:
    """One training invocation: its config and folder, which models, and what came from Python.

    models: "A:B" (--models) or None for all; devices: --devices; attack: run the attack when all models
    are done; accept_model_change: --accept-model-change (run_recipe.check); given: the model callable or
    optax transformation given from Python; arrays: (x, y) given from Python, read as an .npz of them
    would be (config.data.source then names their digest)."""

    config: config_lib.Config
    out: Path
    models: str | None = None
    devices: int | None = None
    quiet: bool = False
    attack: bool = True
    accept_model_change: bool = False
    given: GivenRecipe = GIVEN_NONE
    arrays: tuple[np.ndarray, np.ndarray] | None = None


def load_job_data(job: TrainJob) -> Dataset:
    """The job's data set: config.data's source, or the arrays given from Python (through an .npz in a
    temporary folder, so that they are checked and normalised exactly as `npz:PATH` is)."""
    data = job.config.data
    options = {"splits": data.splits, "limit": data.limit or None}
    if job.arrays is None:
        if data.source.startswith(ARRAYS_SOURCE):
            raise UserError(
                f"data.source = {data.source!r} names arrays given to lira_jax.train_shadows from Python:"
                " resume that run from Python with the same arrays"
            )
        return load_dataset(data.source, data_dir=data.data_dir or None, **options)
    with tempfile.TemporaryDirectory(prefix="lira-jax-arrays-") as folder:
        path = Path(folder) / "arrays.npz"
        np.savez(path, x=job.arrays[0], y=job.arrays[1])
        return dataclasses.replace(load_dataset(f"npz:{path}", **options), source=data.source)


def check_recipe(run: store.RunFolder, recipe: dict, accept_model_change: bool) -> None:
    """run_recipe.check of `run` against this job's recipe record."""
    done = compact_ranges(np.flatnonzero(run.done()).tolist())
    run_recipe.check(run.path, recipe, accept_model_change, done)


def run_job(job: TrainJob) -> Path:
    """Trains the job's models into its run folder (created, or resumed if its config and recipe match),
    then attacks them when all are done (job.attack); returns the folder. The processes of a multi-host
    run must have joined (hosts.initialize) before."""
    config, out = job.config, job.out
    first = jax.process_index() == 0
    compile_cache.refuse_inside(config.train.compilation_cache, out)
    compile_cache.enable(config.train.compilation_cache)
    recipe = recipe_record(config, job.given)  # imports the user's model: a bad one fails before any work
    # Refuse a different config before any work; other processes check once process 0 has made the folder.
    run = store.check_resumable(out, config) if first else None
    if run is not None:
        check_recipe(run, recipe, job.accept_model_change)

    dataset, canary_record = canaries.with_canaries(load_job_data(job), config.canaries, config.model.vocab_size)
    plan = make_plan(config, dataset, job.given)
    num_models = config.train.num_models
    todo = parse_slice(job.models, num_models) if job.models else np.arange(num_models)

    if first and run is None:
        files = {run_recipe.RECIPE_FILE: run_recipe.text(recipe)} if recipe else {}
        if canary_record:
            files[canaries.CANARIES_FILE] = canaries.record_text(canary_record)
        run = create_run(out, config, dataset, len(plan.views), files)
    hosts.barrier("run folder ready")
    if not first:
        run = store.check_resumable(out, config)
        if run is None:
            raise UserError(f"{out} does not exist on process {jax.process_index()}: is the folder shared?")
    # Again for every process and a folder another process created meanwhile (a no-op where checked above).
    check_recipe(run, recipe, job.accept_model_change)
    if not np.array_equal(run.array("labels"), dataset.labels):
        raise UserError(f"the data set's labels differ from {out}/labels.npy: the data changed since the run began")

    todo = todo[~run.done()[todo]]
    hosts.barrier("unfinished models read")  # before anyone marks a model done
    with Claims(out) as claims:  # held until this process's share is trained
        mine, busy = claims.claim(hosts.share(todo, jax.process_index(), jax.process_count()), run.done())
        if busy:
            print(f"note: {busy}", file=sys.stderr)
        if len(mine):
            train_run(run, plan, dataset, mine, device_count=job.devices, quiet=job.quiet)
        hosts.barrier("all shares trained")
    if first:
        print(status(run))
    refuse_diverged(run)
    if first and job.attack and run.done().all():
        run_attack(out)
    return out


@exits_cleanly
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.status:
        print(status(store.open_existing(args.status)))
        return 0
    hosts.initialize(args.coordinator, args.num_processes, args.process_id, args.distributed)
    local_devices = len(jax.local_devices())
    if args.devices is not None and not 1 <= args.devices <= local_devices:
        raise UserError(f"--devices {args.devices}: this process has {local_devices} local device(s)")
    config = config_lib.load(args.config) if args.config else config_lib.Config()
    config = config_lib.with_overrides(config, args.set)
    out = Path(args.out or Path("runs") / (Path(args.config).stem if args.config else "digits"))
    job = TrainJob(
        config,
        out,
        models=args.models,
        devices=args.devices,
        quiet=args.quiet,
        attack=not args.no_attack,
        accept_model_change=args.accept_model_change,
    )
    run_job(job)
    return 0


if __name__ == "__main__":
    use_every_cpu_core()
    raise SystemExit(main())
