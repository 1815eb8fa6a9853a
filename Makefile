# Two entry points, both self-installing on a fresh machine:
#   make demo   - the main job end to end (data, training, compile, golden, tuning, SPICE, RTL, PPA)
#   make test   - the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SHARED_MNIST := ../shared/datasets/mnist
DATA_FROM := $(if $(wildcard $(SHARED_MNIST)/SHA256SUMS.uncompressed),--data-from $(SHARED_MNIST),)
PYTEST_ARGS ?=
TEST_WORKERS ?= 2

.PHONY: demo test test-fast docs system-deps venv clean rtl

system-deps:
	@scripts/system-deps.sh

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

demo: system-deps $(STAMP)
	$(BIN)/bmcnn-hw demo $(DATA_FROM)

test: system-deps $(STAMP)
	$(BIN)/ruff check bmcnn_hw tests bench scripts examples
	$(BIN)/mypy
	$(MAKE) docs
	$(BIN)/python -m pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)  # pytest-xdist: the full tier on two workers

test-fast: system-deps $(STAMP)  # the fast tier: no test marked slow (full test set, large grids, demo)
	$(BIN)/ruff check bmcnn_hw tests bench scripts examples
	$(BIN)/mypy
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

docs: $(STAMP)  # the documentation site into site/; any warning (a broken link or anchor too) fails it
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir site

rtl: $(STAMP)  # regenerate the checked-in Verilog of the reference model
	$(BIN)/bmcnn-hw rtl --reference --out rtl

clean:
	rm -rf $(VENV) runs build sim_build .pytest_cache
