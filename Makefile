# Forcing: set-up and the two everyday commands.
#   make demo   train the main job on the shapes world (installs first)
#   make test   run the test suite (installs first)
# Everything installs into .venv, which sees the machine's packages (--system-site-packages):
# an already installed torch is used as is and never replaced; on a machine without torch the
# CPU build is installed (pip install torch==$(TORCH_CPU)), never a multi-GB CUDA build.
# On a GPU machine install your CUDA torch first (or set TORCH_SPEC), then `make install`.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_SPEC ?= torch==2.13.0
PYTEST_ARGS ?=

.PHONY: install demo test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv --system-site-packages $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/python run.py ckpt_path=auto

test: install
	$(BIN)/python -m pytest -m "not gpu" $(PYTEST_ARGS)

lint: install
	$(BIN)/python -m ruff check .

bench: install
	$(BIN)/python -m lightning_modules.bench

clean:
	rm -rf $(VENV) runs artifacts outputs multirun
