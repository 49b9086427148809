#!/usr/bin/env bash
# The project's run of the paper's experiment on Fashion-MNIST (a dataset the paper did not use):
# 5-layer MLP, FLOPs-matched, narrowed to base width 128 (the paper: 512) so that the 174 runs of the full sweep
# fit in about 1.5 hours on 2 CPU cores; 5 epochs of the paper's MLP recipe; 3 training seeds.
# Resumable: rerun the same command after an interruption; finished runs are kept, unfinished ones resume.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=results/mlp5_fashion_mnist
RUNS=runs/mlp5_fashion_mnist
COMMON=(--family mlp5 --config train/configs/mlp5_fashion_mnist.yaml --workers 2
        --set workers=0 --set checkpoint_hist=1 --set 'model_kwargs={img_size: 28, base_width: 128}')
# cheap variant: 13 graphs spread over C-L, 1 seed, 1 epoch
"$PY" train/sweep.py "${COMMON[@]}" --graphs cheap13 --seeds 0 --epochs 1 \
    --results "$OUT/cheap.csv" --runs-dir "$RUNS/cheap"
# full sweep: the coarse C-L grid, the complete graph and the three connectomes, 3 seeds, 5 epochs
"$PY" train/sweep.py "${COMMON[@]}" --graphs grid,complete,connectomes --seeds 0,1,2 --epochs 5 \
    --results "$OUT/full.csv" --runs-dir "$RUNS/full"
"$PY" train/analyze.py "$OUT/full.csv" --cheap "$OUT/cheap.csv" --out "$OUT" \
    --title 'mlp5 (base width 128), Fashion-MNIST, 5 epochs' --command 'bash train/fashion_mnist_sweep.sh'
