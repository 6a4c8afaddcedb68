# The whole set-up on a fresh machine is `make run` or `make test`: both create
# .venv once (torch pinned to the CPU build through constraints.txt).
PY        ?= python3
VENV      := .venv
BIN       := $(VENV)/bin
STAMP     := $(VENV)/.installed
PIP       := $(BIN)/pip install --constraint constraints.txt
EXTRAS    ?= test

.PHONY: setup run test test-unit test-integration test-learning bench bench-sb3 imitation-env lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first, alone: nothing later may resolve a newer (CUDA) build.
	$(PIP) --quiet torch==2.13.0
	$(PIP) --quiet -e ".[$(EXTRAS)]"
	touch $(STAMP)

# The main job on embedded defaults: local Ray in process, MLflow in sqlite:///mlflow.db.
# Trains until a greedy evaluation (10 episodes) reaches CartPole's 500, or 100k env steps.
run: setup
	$(BIN)/rlfrontier train soft_q --env CartPole-v1 --stop-reward 500 --stop-timesteps 100000 --seed 0

test: setup
	$(BIN)/python -m ruff check rlfrontier algorithms tests benchmarks
	$(BIN)/python -m pytest tests -x -q --timeout=900 --durations=15

test-unit: setup
	$(BIN)/python -m pytest tests/unit -q

test-integration: setup
	$(BIN)/python -m pytest tests/integration -q

test-learning: setup
	$(BIN)/python -m pytest tests/learning -q

bench: setup
	$(BIN)/pip install --constraint constraints.txt --quiet -e ".[bench]"
	$(BIN)/python benchmarks/cartpole_soft_q.py --seeds 5

# The `imitation` library (HumanCompatibleAI, 1.0.1) for the inverse-RL benchmarks' reference
# contenders: it pins gymnasium 0.29 (this project: 1.2), so it lives in a venv of its own, which
# the benchmarks run as a subprocess (never imported into .venv). Same CPU torch pin.
IMITATION := .venv-imitation
imitation-env: $(IMITATION)/.installed

$(IMITATION)/.installed: constraints.txt
	test -x $(IMITATION)/bin/python || $(PY) -m venv $(IMITATION)
	$(IMITATION)/bin/pip install --quiet --upgrade pip
	$(IMITATION)/bin/pip install --quiet --constraint constraints.txt torch==2.13.0
	$(IMITATION)/bin/pip install --quiet --constraint constraints.txt imitation==1.0.1 pyarrow
	touch $@

lint: setup
	$(BIN)/python -m ruff check rlfrontier algorithms tests benchmarks

clean:
	rm -rf $(VENV) $(IMITATION) *.egg-info
