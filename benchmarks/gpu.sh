#!/usr/bin/env bash
# The benchmark on a CUDA device with AMP (float16 autocast): every family at its best graph, beside its
# folded, complete-graph and timm models, training and inference. Sized to finish in under 8 minutes on one
# recent GPU.
#
#   bash benchmarks/gpu.sh [OUT.csv]          # CUDA, batch 128 at 224 px (mlp5 at 32 px)
#   bash benchmarks/gpu.sh --cpu [OUT.csv]    # the same script on the CPU, tiny sizes (a smoke test)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python}
if [ "${1:-}" = "--cpu" ]; then
  shift
  args=(--device cpu --batch 2 --img-size 64 --rounds 1 --steps 1 --families "${FAMILIES:-mlp5,resnet18}")
else
  "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else "no CUDA device; use --cpu")'
  args=(--device cuda --batch "${BATCH:-128}" --img-size 224 --rounds 5 --steps 10 --families "${FAMILIES:-mlp5,cnn8,resnet18,resnet34,resnet34sep,resnet50,efficientnet_b0}")
fi
out=${1:-benchmarks/results_gpu_amp.csv}
exec "$PY" benchmarks/benchmark.py --amp --out "$out" "${args[@]}"
