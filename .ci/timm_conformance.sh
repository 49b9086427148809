#!/usr/bin/env bash
# Run timm's own model test-suite (tests/test_models.py from the sdist of the installed timm) against the
# relgraph models. Fails when a selected test fails or when no test ran.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
case $PY in */*) PY="$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")" ;; esac  # tests run elsewhere; keep the venv link
ver=$("$PY" -c 'import timm; print(timm.__version__)')
cache=${TIMM_SDIST_CACHE:-.cache/timm-sdist}
mkdir -p "$cache"
if [ ! -f "$cache/timm-$ver/tests/test_models.py" ]; then
  "$PY" -m pip download --quiet --no-deps --no-binary :all: "timm==$ver" -d "$cache"
  # only the tests: the installed timm must be the one under test
  tar -xzf "$cache/timm-$ver.tar.gz" -C "$cache" "timm-$ver/tests"
fi
cd "$cache/timm-$ver"
# two worker processes (pytest-xdist), each with its share of the cores: torch's default of one thread per core in
# every worker oversubscribes them (2 workers x 2 threads on 2 cores took 1.8x as long on the resnet18 models)
workers=${CONFORMANCE_WORKERS:-2}
cores=$(nproc)
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(( cores / workers > 0 ? cores / workers : 1 ))}
TORCH_BACKEND=timm_relgraph "$PY" -m pytest -q -p no:cacheprovider -n "$workers" tests/test_models.py -k "${CONFORMANCE_FILTER:-relgraph}" "$@"
