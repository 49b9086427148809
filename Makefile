# Quick start: `make demo` (set up, then train the demo) and `make test` (set up, then run the tests).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
FASHION_MNIST := /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz

.PHONY: setup data demo test conformance catalogue weights clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e '.[dev]'
	touch $(STAMP)

# Fashion-MNIST comes from Debian's dataset-fashion-mnist package (installed here when running as root).
data:
	@if [ ! -f $(FASHION_MNIST) ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y dataset-fashion-mnist; \
	  else \
	    echo "Fashion-MNIST is missing: run 'sudo apt-get install dataset-fashion-mnist'"; exit 1; \
	  fi; \
	fi

demo: setup data
	$(VENV)/bin/relgraph demo

test: setup data
	$(PY) -m pytest -q
	$(MAKE) conformance

# timm's own tests/test_models.py (from the installed timm's sdist) on every relgraph model
conformance: setup
	PY=$(abspath $(PY)) bash .ci/timm_conformance.sh

# train (or reuse demo_output/) and export the Fashion-MNIST weights into weights/ (not committed: > 5 MB)
weights: setup data
	$(PY) hub/make_weights.py

catalogue: setup
	$(VENV)/bin/relgraph catalogue --build

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
