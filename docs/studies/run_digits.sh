#!/usr/bin/env bash
# The digits studies in full form (docs/studies.md): trains one run of 64 CNNs per defence
# (configs/study/digits_*.toml, each one setting away from configs/digits.toml) into runs/study/, then
# writes the four studies' tables and PNGs into docs/studies/digits/. Rerunning resumes: finished runs
# are not trained again. About 1 to 2 minutes per run on a 2-core CPU.
set -euo pipefail
cd "$(dirname "$0")/../.."
defences=(none augment early_stopping dropout weight_decay label_smoothing mixup dp_sgd)
runs=()
for defence in "${defences[@]}"; do
  run="runs/study/digits_${defence}"
  python -m lira_jax.train --config "configs/study/digits_${defence}.toml" --out "$run" --no-attack --quiet
  runs+=("$run")
done
# 128 models with per-model learning rate, weight decay, label smoothing and epochs ([vary]): wide gaps
python -m lira_jax.train --config configs/study/digits_gap.toml --out runs/study/digits_gap --no-attack --quiet
out=docs/studies/digits
mkdir -p "$out"
python -m lira_jax.study defences "${runs[@]}" --out "$out"
python -m lira_jax.study gap runs/study/digits_gap --out "$out"
python -m lira_jax.study shadows runs/study/digits_none --out "$out"
python -m lira_jax.study violins runs/study/digits_none --out "$out"
