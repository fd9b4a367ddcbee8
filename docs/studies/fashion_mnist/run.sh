#!/usr/bin/env bash
# The Fashion-MNIST studies (docs/studies.md, issue 13): 64 CNNs of configs/study/fashion_mnist.toml for
# the shadow-count and violin studies and the README's table and ROC, then one run of 16 models per defence
# (the same config at 16 models, plus one setting each) for the defence table and, pooled, the gap study.
# Writes the tables, JSON and PNGs into docs/studies/fashion_mnist/. Rerunning resumes: finished models are
# not trained again. On the project's 2-core CPU: about 32 minutes for the 64 models, 4 to 12 per defence.
# RUNS=/elsewhere bash docs/studies/fashion_mnist/run.sh puts the run folders elsewhere (default runs/study).
set -euo pipefail
cd "$(dirname "$0")/../../.."
config=configs/study/fashion_mnist.toml
runs_dir=${RUNS:-runs/study}
out=docs/studies/fashion_mnist
python -m lira_jax.train --config "$config" --out "$runs_dir/fashion_mnist" --no-attack --quiet
python -m lira_jax.attack "$runs_dir/fashion_mnist"   # metrics, ROC, report and per-example CSV in the run
cp "$runs_dir/fashion_mnist/metrics.json" "$runs_dir/fashion_mnist/roc.png" "$out/"

declare -A defences=(
  [none]=""
  [augment]='train.augment=["flip","crop:2"]'
  [weight_decay]="train.weight_decay=5e-3"
  [early_stopping]="train.epochs=4"
  [label_smoothing]="train.label_smoothing=0.1"
  [dp_sgd]="model.norm=group train.learning_rate=0.5 train.dp_sgd=true train.epochs=5"
)
runs=()
for defence in none augment weight_decay early_stopping label_smoothing dp_sgd; do
  run="$runs_dir/fashion_mnist16_$defence"
  settings=(--set train.num_models=16)
  for setting in ${defences[$defence]}; do settings+=(--set "$setting"); done
  python -m lira_jax.train --config "$config" "${settings[@]}" --out "$run" --no-attack --quiet
  runs+=("$run")
done

python -m lira_jax.study defences "${runs[@]}" --out "$out"
python -m lira_jax.study gap "${runs[@]}" --targets all --out "$out"
python -m lira_jax.study shadows "$runs_dir/fashion_mnist" --out "$out"
python -m lira_jax.study violins "$runs_dir/fashion_mnist" --out "$out"
