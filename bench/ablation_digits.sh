#!/usr/bin/env bash
# The DS-ATGO ablation (paper Fig. 6, 8, 11 in kind) on scikit-learn's digits with a conv net,
# on CPU: vanilla / AT / TGO / DS-ATGO, same seeds and the same budget for all four.
#
#   bash bench/ablation_digits.sh                  # 3 seeds x 4 settings x 30 epochs (~25-35 min on a busy 2-core machine)
#   SEEDS="0" EPOCHS=5 bash bench/ablation_digits.sh   # quick look
#
# Needs `dsatgo` on PATH (the project's venv: source .venv/bin/activate) and matplotlib for --plot.
# Runs go to $OUT (default runs/ablation_digits, git-ignored); the table is printed and written to
# $OUT/summary.md and $OUT/summary.json by docs/ablation/summarize.py; the seed-0 PNGs of the
# vanilla and DS-ATGO runs are copied to docs/ablation/ when COPY_PLOTS=1 (the default).
# Kept as a shell script (not bench/*.py) so that `make bench` does not run these long trainings.
set -euo pipefail

cd "$(dirname "$0")/.."
OUT=${OUT:-runs/ablation_digits}
SEEDS=${SEEDS:-"0 1 2"}
EPOCHS=${EPOCHS:-30}
COPY_PLOTS=${COPY_PLOTS:-1}
# One intra-op thread: on a shared 2-core machine this is several times faster than 2 threads that
# fight other jobs, and the results depend on it (float reductions are ordered differently with
# another thread count, and a spiking net amplifies that), so keep it fixed to repeat a run.
THREADS=${THREADS:-1}
# 5 spiking layers: conv1 32@8x8, conv2 32@8x8, pool, conv3 64@4x4, conv4 64@4x4, pool, fc1 128; readout 10.
ARCH=(--model convnet --channels 32 32 pool 64 64 pool --hidden 128 -T 4)
# The same budget for every setting: Adam, lr 2e-3 with a cosine schedule, batch 32, label smoothing 0.1.
BUDGET=(--epochs "$EPOCHS" --batch-size 32 --optimizer adam --lr 2e-3 --label-smoothing 0.1 --device cpu)

for seed in $SEEDS; do
  for ablation in vanilla at tgo ds-atgo; do
    run="$OUT/${ablation}_s${seed}"
    echo "== $ablation seed $seed -> $run"
    OMP_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS dsatgo train --dataset digits "${ARCH[@]}" "${BUDGET[@]}" \
      --ablation "$ablation" --seed "$seed" --plot --no-progress --out "$run/model.pt"
  done
done

python docs/ablation/summarize.py "$OUT"

if [ "$COPY_PLOTS" = 1 ]; then
  first=$(echo "$SEEDS" | awk '{print $1}')
  for ablation in vanilla ds-atgo; do
    for kind in firing_rate window_share training; do
      cp "$OUT/${ablation}_s${first}/model_${kind}.png" "docs/ablation/${ablation}_s${first}_${kind}.png"
    done
  done
  echo "plots copied to docs/ablation/"
fi
