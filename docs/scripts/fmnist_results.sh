#!/usr/bin/env bash
# Regenerate docs/results.md's table: 5 methods x 3 training seeds on Fashion-MNIST-LT (rho = 100),
# identical backbone (cnn28, width 16) and schedule (8 epochs, cosine, lr 0.05). About 30 min on 2 cores.
# Usage: bash docs/scripts/fmnist_results.sh [OUT_DIR]
set -euo pipefail
OUT=${1:-outputs/results}
NC=${NCOLLAPSE:-.venv/bin/ncollapse}
for seed in 0 1 2; do
  for cfg in configs/fmnist_lt_ce.yaml configs/fmnist_lt_ldam_drw.yaml configs/fmnist_lt_setf.yaml \
             configs/methods/fmnist_lt_cal.yaml configs/methods/fmnist_lt_allnc.yaml; do
    name=$(basename "$cfg" .yaml)
    if ls -d "$OUT/runs/$name-seed$seed-"* >/dev/null 2>&1; then continue; fi  # resumable
    "$NC" train "$cfg" train.seed=$seed run.name="$name-seed$seed" run.out_dir="$OUT/runs" \
      train.progress=false run.tensorboard=false --json > /dev/null
    echo "done $name seed $seed"
  done
done
"$NC" report "$OUT/runs" --markdown --html "$OUT/report.html" --title "Fashion-MNIST-LT, rho = 100"
