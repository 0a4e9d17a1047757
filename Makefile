# qpaper: the Makefile is the interface. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PROFILE ?= mini
SEED ?= 0
WORKERS ?=
SCHEDULER ?=

.PHONY: help env test data reproduce smoke bench bench-arch datasets models notebooks clean gpu-wheels gpu-train gpu-register gpu-recipes lab

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

env: $(STAMP)  ## create .venv and install qpaper with its dev extras (idempotent)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $(STAMP)

test: $(STAMP)  ## run the test suite (builds the env first if needed)
	$(BIN)/pytest

data: $(STAMP)  ## fetch, verify and prepare the wallpapers (apt-get download + dpkg-deb -x)
	$(BIN)/qpaper data fetch wallpapers --seed $(SEED)

datasets: $(if $(filter mini,$(PROFILE)),data,$(STAMP))  ## build every dataset the notebooks of PROFILE read (SCHEDULER=ADDRESS: on Dask)
	$(BIN)/qpaper experiments datasets --profile $(PROFILE) --seed $(SEED) $(if $(WORKERS),--workers $(WORKERS)) \
	  $(if $(SCHEDULER),--scheduler $(SCHEDULER))

models: datasets  ## train the models of PROFILE that are missing (TRAIN=1: retrain them all)
	$(BIN)/qpaper experiments models --profile $(PROFILE) --seed $(SEED) $(if $(TRAIN),--retrain)

notebooks: models  ## execute every notebook on PROFILE into results/PROFILE/notebooks (tables and figures beside)
	$(BIN)/qpaper notebooks --profile $(PROFILE) --seed $(SEED)

reproduce: $(if $(filter mini,$(PROFILE)),data,$(STAMP))  ## datasets, models, every notebook, model cards and README's results, on PROFILE (default mini)
	$(BIN)/qpaper reproduce --profile $(PROFILE) --seed $(SEED) $(if $(WORKERS),--workers $(WORKERS)) $(if $(TRAIN),--retrain)

smoke:  ## the smoke profile end to end, in a minute or two
	$(MAKE) reproduce PROFILE=smoke

bench: $(STAMP)  ## benchmarks: ratios measured in one run (bench-arch: the backbone comparison, 40 min)
	$(BIN)/python benchmarks/bench_generator.py
	$(BIN)/python benchmarks/bench_model.py
	$(BIN)/python benchmarks/bench_baselines.py
	$(BIN)/python benchmarks/bench_speed.py
	$(BIN)/python benchmarks/bench_localize.py
	$(BIN)/python benchmarks/bench_estimate.py
	$(BIN)/python benchmarks/bench_filelevel_windows.py
	$(BIN)/python benchmarks/bench_filelevel_speed.py
	$(BIN)/python benchmarks/bench_batch.py
	$(BIN)/python benchmarks/bench_wide.py
	$(BIN)/python benchmarks/bench_cluster.py

bench-arch: datasets  ## which backbone learns on 2 cores: each trained for the same time on the mini data
	$(BIN)/python benchmarks/bench_arch.py

clean:  ## remove generated datasets (keeps fetched data and the env)
	rm -rf data/processed/datasets

lab: $(STAMP)  ## JupyterLab on notebooks/ from .venv, the jupytext .py files opening as notebooks
	$(BIN)/pip install -q "jupyterlab>=4,<5"
	$(BIN)/jupyter lab --ServerApp.root_dir=notebooks --ServerApp.ip=127.0.0.1 \
	  --ServerApp.contents_manager_class=jupytext.TextFileContentsManager $(if $(filter 0,$(shell id -u)),--allow-root)

gpu-wheels:  ## download the wheels the GPU machine lacks (keras, namex, optree for Python 3.12) into .whl/
	rm -rf .whl && mkdir -p .whl
	$(BIN)/pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
	  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
	  -d .whl "keras==$$($(BIN)/python -c 'from importlib.metadata import version; print(version("keras"))')" namex optree

gpu-train:  ## ON the GPU machine: one lent session (data, resume models/gpu, train, evaluate into $OUT/run)
	bash scripts/gpu_train.sh

gpu-register:  ## back here: RUN=<the fetched OUT>/run into models/gpu if it learned, else results/gpu (+ compile cache)
	$(BIN)/qpaper gpu register $(RUN)

GPU_SEARCH := --minutes 58 --reserve 0 --patches-per-qf1 2500 --test-per-qf1 100 --depth 7 --growth 12 --dropout 0 \
  --batch 64 --lr-batch 64 --steps-per-call 10 --sweep-patches 48000 --sweep-only --eval-every 45 \
  --recipes float32,first-session,f32-stem,highpass,curriculum --seed $(SEED)
gpu-recipes: data  ## issue 22 on 2 CPU cores (about 65 min): the recipes on a small pixel DenseNet, into results/gpu/cpu-recipes
	KERAS_BACKEND=jax $(BIN)/qpaper gpu run --out /tmp/qpaper-cpu-recipes --data /tmp/qpaper-cpu-recipes-data $(GPU_SEARCH)
	KERAS_BACKEND=jax $(BIN)/qpaper gpu run --out /tmp/qpaper-cpu-recipes-2 --data /tmp/qpaper-cpu-recipes-data \
	  $(subst --sweep-patches 48000,--sweep-patches 24000,$(subst --minutes 58,--minutes 30,$(GPU_SEARCH))) \
	  --recipes ce-aligned,ce,aligned
	$(BIN)/qpaper gpu search-report /tmp/qpaper-cpu-recipes/run /tmp/qpaper-cpu-recipes-2/run --data /tmp/qpaper-cpu-recipes-data \
	  --out results/gpu/cpu-recipes --command "make gpu-recipes"
