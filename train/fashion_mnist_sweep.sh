#!/usr/bin/env bash
# The project's run of the paper's experiment on Fashion-MNIST (a dataset the paper did not use):
# 5-layer MLP, FLOPs-matched, narrowed to base width 128 (the paper: 512); 5 epochs of the paper's MLP recipe.
# Graphs: the paper's 52-graph C-L grid (graph2nn's graphs_n64_52), the three connectomes (directed, as the
# authors train them), 5 training seeds each (the paper's count for the MLP); the complete graph, the reference
# of every comparison, with 15 seeds. 10,000 training images are held out as the selection split (best graph,
# sweet spot); the 10,000 test images are only reported.
# Resumable: rerun the same command after an interruption; finished runs are kept, unfinished ones resume.
set -euo pipefail
cd "$(dirname "$0")/.."
RELGRAPH=${RELGRAPH:-.venv/bin/relgraph}
OUT=results/mlp5_fashion_mnist
RUNS=runs/mlp5_fashion_mnist
COMMON=(--family mlp5 --config mlp5_fashion_mnist --workers "${WORKERS:-2}"
        --set workers=0 --set checkpoint_hist=1 --set holdout=10000 --set memory_loader=true
        --set 'model_kwargs={img_size: 28, base_width: 128}')
# cheap identification: 13 graphs spread over C-L, 1 seed, 1 epoch
"$RELGRAPH" sweep "${COMMON[@]}" --graphs cheap13 --seeds 0 --epochs 1 \
    --results "$OUT/cheap.csv" --runs-dir "$RUNS/cheap"
# full sweep
"$RELGRAPH" sweep "${COMMON[@]}" --graphs grid,connectomes --seeds 0-4 --epochs 5 \
    --results "$OUT/full.csv" --runs-dir "$RUNS/full"
"$RELGRAPH" sweep "${COMMON[@]}" --graphs complete --seeds 0-14 --epochs 5 \
    --results "$OUT/full.csv" --runs-dir "$RUNS/full"
"$RELGRAPH" analyze "$OUT/full.csv" --cheap "$OUT/cheap.csv" --out "$OUT" \
    --title 'mlp5 (base width 128), Fashion-MNIST, 5 epochs' --command 'bash train/fashion_mnist_sweep.sh'
