# Set-up and everyday commands. Each target builds its own virtual environment in .venv.
#   make demo   the main job on a built-in shot (writes ivi_demo/, prints where)
#   make test   the test suite (what CI runs)
#   make lint   ruff, then mypy (configured in pyproject.toml)
# On a GPU machine, put your CUDA build of torch in first: make venv TORCH=torch  (or pip install it into .venv)

PYTHON ?= python3
TORCH ?= torch==2.13.0
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv demo test lint quality clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install --quiet "$(TORCH)"
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/ivi-render demo --out ivi_demo --overwrite

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

# The quality harness of ../shared/bench on the public shots (slow: up to 10 minutes a shot on a CPU).
quality: $(STAMP)
	$(BIN)/pip install --quiet opencv-contrib-python-headless scikit-image matplotlib
	$(BIN)/python bench/quality_harness.py

clean:
	rm -rf $(VENV) ivi_demo .pytest_cache
