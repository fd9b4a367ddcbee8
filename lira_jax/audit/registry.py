"""The attacks: one registry, one calling convention, inputs checked once.

Every attack is one `Attack` line of REGISTRY: its name, its family function and what it reads. A family
function has one signature,

    def family(inputs: AttackInputs, names: Sequence[str]) -> dict[str, np.ndarray | NotApplicable]

and returns {name: float32[T, N]} for the named attacks of its family, one score per target t (the
positions inputs.targets) and example n, higher = more likely a member, or a NotApplicable with the reason
where a set it needs is too small (a spread from fewer than 2 values, an empty set: never a number). The
names of one family are scored in one call, which is where the speed is: the LiRA variants share each
example's set statistics, the baselines share their chunks. `check_inputs` checks everything the chosen
attacks read (shapes, dtypes, labels, each target's keep row, options), once, before anything is scored;
the family functions trust it.

A new attack is one function and one line:
1. write `def my_attack(inputs: AttackInputs, names: Sequence[str]) -> dict[str, np.ndarray]` in a module of
   lira_jax/audit/attacks/ (its family's, or a new one; LiRA's variants in attacks/lira/). It may read
   inputs.scores, inputs.keep, inputs.targets, inputs.options, and inputs.logits, inputs.labels or
   inputs.transfer when it needs them (`lira_jax.audit.inputs.checked.AttackInputs`);
2. add `Attack("my_attack", my_attack, needs=frozenset({SCORES, ...}))` to REGISTRY below. Its needs
   decide what is checked for it and when it runs by default (those on logits only with logits.npy).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from lira_jax.audit.attacks.base import base_family
from lira_jax.audit.attacks.baselines import logit_baselines, score_baselines
from lira_jax.audit.attacks.bavaria import bavaria_family
from lira_jax.audit.attacks.classifiers import (
    CLASSIFIERS,
    MODEL_FOLDS,
    check_settings,
    check_transfer,
    classifier_family,
)
from lira_jax.audit.attacks.equalise import out_shortfall
from lira_jax.audit.attacks.label_only import label_only_family
from lira_jax.audit.attacks.lira.lira import lira_family
from lira_jax.audit.attacks.rmia import population_mask, rmia_family
from lira_jax.audit.inputs.checked import (
    EQUALISED,
    AttackInputs,
    AttackOptions,
    NotApplicable,
    TransferShadow,
    check_logits,
    check_scores_keep,
    check_target_rows,
)
from lira_jax.audit.inputs.masking import Mask
from lira_jax.audit.report.progress import attack_progress
from lira_jax.audit.streaming import ExampleArray
from lira_jax.errors import UserError

Family = Callable[[AttackInputs, Sequence[str]], dict[str, np.ndarray | NotApplicable]]

SCORES = "scores"  # φ float32[M, N, V]: every attack gets them
LOGITS = "logits"  # logits float[M, N, V, C] and labels int[N]
TRANSFER = "transfer"  # a shadow model of another run (ML-Leaks adversary 2)
OUT_SHADOWS = "out_shadows"  # an OUT shadow for every (target, example) after equalised counts, else n/a
CLASSIFIER = "classifier"  # a trained attack model: a score above 0 is its own decision "member"


@dataclass(frozen=True)
class Attack:
    """One attack: its name, the family function that scores it, and what it needs."""

    name: str
    family: Family
    needs: frozenset[str]


REGISTRY: dict[str, Attack] = {
    attack.name: attack
    for attack in (
        # LiRA checks its own shadow sets: a variant they are too small for is NotApplicable, not an error.
        Attack("lira_online", lira_family, frozenset({SCORES})),
        Attack("lira_online_fixed_var", lira_family, frozenset({SCORES})),
        Attack("lira_offline", lira_family, frozenset({SCORES})),
        Attack("lira_offline_fixed_var", lira_family, frozenset({SCORES})),
        Attack("lira_offline_two_sided", lira_family, frozenset({SCORES})),
        Attack("rmia_online", rmia_family, frozenset({SCORES})),
        Attack("rmia_offline", rmia_family, frozenset({SCORES, OUT_SHADOWS})),
        # BaVarIA checks its own shadow sets and prior, as LiRA does.
        Attack("bavaria_t", bavaria_family, frozenset({SCORES})),
        Attack("bavaria_n", bavaria_family, frozenset({SCORES})),
        Attack("base", base_family, frozenset({SCORES})),
        Attack("loss", score_baselines, frozenset({SCORES})),
        Attack("calibrated_loss", score_baselines, frozenset({SCORES, OUT_SHADOWS})),
        Attack("global_threshold", score_baselines, frozenset({SCORES})),
        Attack("confidence", logit_baselines, frozenset({LOGITS})),
        Attack("entropy", logit_baselines, frozenset({LOGITS})),
        Attack("modified_entropy", logit_baselines, frozenset({LOGITS})),
        Attack("correctness", logit_baselines, frozenset({LOGITS})),
        Attack("label_only", label_only_family, frozenset({LOGITS, OUT_SHADOWS})),
        Attack("shokri", classifier_family, frozenset({LOGITS, CLASSIFIER})),
        Attack("ml_leaks_adv1", classifier_family, frozenset({LOGITS, CLASSIFIER})),
        Attack("ml_leaks_adv2", classifier_family, frozenset({LOGITS, TRANSFER, CLASSIFIER})),
    )
}

ATTACKS = tuple(REGISTRY)
NEED_LOGITS = tuple(name for name, attack in REGISTRY.items() if LOGITS in attack.needs)
LABEL_BLIND = ("confidence", "entropy", *CLASSIFIERS)  # read only the sorted output: constant under --mask label


def check_inputs(
    scores: ExampleArray,
    keep: Any,
    targets: Sequence[int] | None,
    attacks: Sequence[str],
    *,
    logits: ExampleArray | None = None,
    labels: Any = None,
    transfer: TransferShadow | None = None,
    options: AttackOptions | None = None,
    model_ids: Sequence[int] | None = None,
) -> AttackInputs:
    """The one check of what `attacks` read: scores float[M, N, V], keep bool[M, N], targets (model
    positions; None: all), each target with members and non-members (messages name models by model_ids,
    the ids of the rows of keep; None: their positions), logits float[M, N, V, C] with labels int[N]
    (checked whenever given), the transfer shadow and the options (None: defaults). UserError names the
    first problem. Shadow sets too small for an attack make it not applicable (`score_checked`), not an
    error."""
    options = options or AttackOptions()
    unknown = [name for name in attacks if name not in REGISTRY]
    if unknown:
        raise UserError(f"unknown attack(s) {', '.join(unknown)}; known: {', '.join(ATTACKS)}")
    keep, targets = check_scores_keep(scores, keep, targets)
    check_target_rows(keep, targets, model_ids)
    chosen = [REGISTRY[name] for name in attacks]
    on_logits = [attack.name for attack in chosen if LOGITS in attack.needs]
    if on_logits and logits is None:
        raise UserError(f"{', '.join(on_logits)} need the full logits (logits.npy), which were not given")
    if logits is not None:
        labels = check_logits(logits, labels, scores.shape)
    if any(TRANSFER in attack.needs for attack in chosen):
        check_transfer(transfer)
    if any(attack.family is rmia_family for attack in chosen):
        if not 0.0 <= options.rmia_a <= 1.0 or not options.rmia_gamma > 0:
            raise UserError(f"RMIA needs 0 <= a <= 1 and gamma > 0, got a={options.rmia_a}, gamma={options.rmia_gamma}")
        options = replace(options, population=population_mask(options.population, keep.shape[1]))
    if any(CLASSIFIER in attack.needs for attack in chosen) and options.classifier_rows is not None:
        check_settings(options.classifier_rows, MODEL_FOLDS, 0, scores.shape[2])
    return AttackInputs(scores, keep, targets, logits, labels, transfer, options)


def score_checked(
    inputs: AttackInputs, attacks: Sequence[str], *, quiet: bool = False
) -> dict[str, np.ndarray | NotApplicable]:
    """{attack: float32[T, N] or NotApplicable} in the order asked, each family called once (inputs from
    `check_inputs`); an attack needing OUT_SHADOWS is not applicable where some (target, example) has none.

    Progress on stderr unless quiet (`progress.attack_progress`): on a terminal a bar (attacks scored, the
    family at work) once scoring has taken a few seconds, gone when it ends; elsewhere one line per family."""
    results: dict[str, np.ndarray | NotApplicable] = {}
    out_reason = out_shortfall(inputs.keep, inputs.targets)
    if out_reason is not None:
        results.update({name: NotApplicable(out_reason) for name in attacks if OUT_SHADOWS in REGISTRY[name].needs})
    families = dict.fromkeys(REGISTRY[name].family for name in ATTACKS if name in attacks and name not in results)
    with attack_progress(len(attacks), quiet=quiet) as progress:
        for family in families:
            names = [
                name for name in ATTACKS if name in attacks and name not in results and REGISTRY[name].family is family
            ]
            progress.start(names)
            results.update(family(inputs, names))
            progress.finish(names)
    return {name: results[name] for name in attacks}


def score_attacks(
    scores: ExampleArray,
    keep: np.ndarray,
    targets: Sequence[int] | None = None,
    attacks: Sequence[str] = ATTACKS,
    *,
    logits: ExampleArray | None = None,
    labels: np.ndarray | None = None,
    lira_centre: str = "median",
    lira_counts: str = EQUALISED,
    rmia_a: float = 0.3,
    rmia_gamma: float = 1.0,
    population: np.ndarray | None = None,
    transfer: TransferShadow | None = None,
    classifier_rows: int | None = None,
    workers: int | None = None,
) -> dict[str, np.ndarray]:
    """{attack: float32[T, N]} for the named attacks (see ATTACKS); scores float32[M, N, V], keep bool[M, N].

    LiRA variants share one pass over the scores (lira_counts: "equalised", "raw" or "reference" shadow
    sets, `lira.lira_scores`); the others make one per family. An attack these inputs cannot score is a
    NotApplicable with the reason. The attack classifiers
    (`lira_jax.audit.attacks.classifiers`, scores: member log-odds) need logits, ml_leaks_adv2 also `transfer`;
    classifier_rows bounds each attack model's training rows (None: classifiers.MAX_ROWS).
    """
    options = AttackOptions(
        lira_centre=lira_centre,
        lira_counts=lira_counts,
        rmia_a=rmia_a,
        rmia_gamma=rmia_gamma,
        population=population,
        classifier_rows=classifier_rows,
        workers=workers,
    )
    inputs = check_inputs(
        scores, keep, targets, attacks, logits=logits, labels=labels, transfer=transfer, options=options
    )
    return score_checked(inputs, attacks)


def choose_attacks(
    attacks: Sequence[str] | None, run_dir: Path, has_logits: bool, mask: Mask | None, has_transfer: bool
) -> list[str]:
    """The attacks to run: those asked for, checked, or by default every one the run folder allows."""
    left_out = set(LABEL_BLIND) if mask is not None and mask.kind == "label" else set()
    if attacks is None:
        return [
            name
            for name, attack in REGISTRY.items()
            if (has_logits or LOGITS not in attack.needs)
            and (has_transfer or TRANSFER not in attack.needs)
            and name not in left_out
        ]
    if not has_logits and any(name in NEED_LOGITS for name in attacks):
        wanted = [name for name in attacks if name in NEED_LOGITS]
        raise UserError(f"{', '.join(wanted)} need logits, but {run_dir} has no logits.npy")
    if "ml_leaks_adv2" in attacks and not has_transfer:
        raise UserError("ml_leaks_adv2 (data transfer) needs --shadow-run OTHER, a run trained on another data set")
    blind = [name for name in attacks if name in left_out]
    if blind:
        raise UserError(
            f"under --mask label every output is a one-hot vector, so {', '.join(blind)} would score every "
            "example the same: nothing to attack; leave them out"
        )
    return list(attacks)
