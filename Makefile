# Quick start: `make demo` (set up, then train the demo) and `make test` (set up, then run the tests).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
FASHION_MNIST := /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz
# The oldest supported timm (pyproject's floor; tests/test_wheel.py keeps the two equal) for `make oldest`;
# .venv holds the newest releases that resolve. Add torch / torchvision pins to OLDEST_PINS to test older ones.
OLDEST_TIMM := 1.0.31
OLDEST_PINS := timm==$(OLDEST_TIMM)
OLDEST_VENV := .cache/venv-oldest
# the project's tests that `make oldest` runs, e.g. make oldest TESTS=tests/test_wheel.py (default: all, or only
# INSTALL_TESTS when the oldest stack resolves to the very versions .venv's `make test` already ran them on)
TESTS ?=
INSTALL_TESTS := tests/test_wheel.py tests/test_cli.py tests/test_hub.py
STACK := import timm, torch, torchvision; print(timm.__version__, torch.__version__, torchvision.__version__)
OLDEST_PYTEST := PYTHONSAFEPATH=1 RELGRAPH_EXPECT_INSTALLED=$(OLDEST_TIMM) $(OLDEST_VENV)/bin/pytest -q -p no:cacheprovider

.PHONY: setup data demo test conformance oldest wheel ci catalogue weights clean

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

# what CI runs: the tests and timm's conformance suite on the newest timm, then the oldest stack from the wheel
ci: test oldest

# the wheel that `pip install` takes (dist/timm_relgraph-*.whl)
wheel: setup
	rm -rf dist build
	$(PY) -m pip wheel --quiet --no-deps -w dist .

# A fresh venv with the wheel (built by that venv's pip, not installed from the checkout) and the oldest supported
# timm. The core install (no extras) runs relgraph train / sweep / analyze from a folder outside the checkout
# (.ci/wheel_smoke.py); then, with the dev extra, the same with figures, and the project's tests against the
# installed package (PYTHONSAFEPATH keeps the working directory off sys.path; tests/test_wheel.py checks it): all
# of them when the oldest stack differs from .venv's, the installation's own (INSTALL_TESTS) when it is the same.
oldest: data
	rm -rf $(OLDEST_VENV) dist build
	$(PYTHON) -m venv $(OLDEST_VENV)
	$(OLDEST_VENV)/bin/pip wheel --quiet --no-deps -w dist .
	$(OLDEST_VENV)/bin/pip install --quiet --no-compile $$(ls dist/timm_relgraph-*.whl) $(OLDEST_PINS)
	$(OLDEST_VENV)/bin/python -I .ci/wheel_smoke.py core --timm $(OLDEST_TIMM)
	$(OLDEST_VENV)/bin/pip install --quiet --no-compile "$$(ls dist/timm_relgraph-*.whl)[dev]" $(OLDEST_PINS)
	$(OLDEST_VENV)/bin/python -I .ci/wheel_smoke.py plots --timm $(OLDEST_TIMM)
	@oldest="$$($(OLDEST_VENV)/bin/python -c '$(STACK)')"; newest="$$($(PY) -c '$(STACK)' 2>/dev/null || true)"; \
	tests="$(TESTS)"; \
	if [ -z "$$tests" ] && [ "$$oldest" = "$$newest" ]; then \
	  tests="$(INSTALL_TESTS)"; \
	  echo "oldest: timm, torch, torchvision $$oldest are the stack .venv ran the whole suite on;" \
	       "testing the installed wheel with $$tests"; \
	fi; \
	echo "$(OLDEST_PYTEST) $$tests"; $(OLDEST_PYTEST) $$tests

# train (or reuse demo_output/) and export the Fashion-MNIST weights into weights/ (not committed: > 5 MB)
weights: setup data
	$(PY) hub/make_weights.py

catalogue: setup
	$(VENV)/bin/relgraph catalogue --build

clean:
	rm -rf $(VENV) $(OLDEST_VENV) build dist *.egg-info .pytest_cache
