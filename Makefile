# Two commands for a fresh machine:  `make demo`  (set up + run the main job)  and  `make test-all`
# (set up + every test; `make test` is the unit tier).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
DEMO   ?= outputs/demo
# Models the CPU demo trains, each leaving two folds out (see folds.yaml): a cycle of three, so each of the
# three held-out runs is predicted by the two models that never saw it and the thresholds fit a small ensemble
# (README "Nested CV"); it keeps `make demo` within 20 minutes on 2 cores. The BENCHMARKS.md figures use seven
# such models: DEMO_FOLDS="0+1 1+2 2+3 3+4 4+5 5+6 6+0".
DEMO_FOLDS ?= 0+1 1+2 2+0
export WANDB_MODE ?= offline

# Pre-training on simulation, then fine-tuning (README "Pre-training on simulation"): PRETRAIN_RUNS simulated
# runs of every difficulty in PRETRAIN_SNR (each with its own random imaging) -> one model pre-trained on them
# -> the pair models FINETUNE_FOLDS fine-tuned from it on DATA (its folds: FOLDS) -> the ensemble of DATA's
# test runs.
# PARTICLES: czii or a particles file / copick config (the classes of DATA); TRAIN_ARGS: more train.py flags.
PRETRAIN        ?= outputs/pretrain
PRETRAIN_RUNS   ?= 32
PRETRAIN_SNR    ?= hard:easy
PRETRAIN_SIZE   ?= demo
PRETRAIN_EPOCHS ?= 72
DATA            ?= $(DEMO)/data
FOLDS           ?= folds.yaml
FINETUNE_FOLDS  ?= $(DEMO_FOLDS)
PARTICLES       ?= czii
TRAIN_ARGS      ?=

.PHONY: setup demo pretrain test test-all clean-demo

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

# simulate (realistic difficulty) -> train the demo models (the CPU recipe) -> fit thresholds out of fold ->
# ensemble the test runs -> score -> PNGs; then the classical baseline on the same runs, and both scores side by side
demo: setup
	$(PY) simulate.py --out $(DEMO)/data --size demo --seed 0 --overwrite
	for fold in $(DEMO_FOLDS); do \
	  $(PY) train.py --fold $$fold --data $(DEMO)/data --out $(DEMO)/runs --overwrite || exit 1; \
	done
	$(PY) ensemble.py --runs $(DEMO)/runs --data $(DEMO)/data --split test \
	  --out $(DEMO)/submission.csv --score --pictures $(DEMO)/pictures
	$(PY) -m benchmarks.classical_baseline --data $(DEMO)/data --submission $(DEMO)/classical_baseline.csv
	$(PY) -m postprocess.metric $(DEMO)/submission.csv $(DEMO)/classical_baseline.csv --gt $(DEMO)/data/test_truth

pretrain: setup
	$(PY) simulate.py --out $(PRETRAIN)/data --size $(PRETRAIN_SIZE) --n-train $(PRETRAIN_RUNS) --n-test 0 \
	  --difficulty $(PRETRAIN_SNR) --particles $(PARTICLES) --seed 1 --overwrite
	$(PY) train.py --fold 0 --data $(PRETRAIN)/data --data.folds_file $(PRETRAIN)/data/folds.yaml \
	  --particles $(PARTICLES) --experiment pretrained --out $(PRETRAIN)/runs --overwrite $(TRAIN_ARGS) \
	  --trainer.max_epochs $(PRETRAIN_EPOCHS)
	for fold in $(FINETUNE_FOLDS); do \
	  $(PY) train.py --fold $$fold --data $(DATA) --data.folds_file $(FOLDS) --particles $(PARTICLES) \
	    --init-from $(PRETRAIN)/runs/pretrained_fold0 --out $(PRETRAIN)/finetuned --overwrite $(TRAIN_ARGS) || exit 1; \
	done
	$(PY) ensemble.py --runs $(PRETRAIN)/finetuned --data $(DATA) --split test --out $(PRETRAIN)/submission.csv

# the unit tier (known answers, every bad input, the golden ensemble): about a minute on an idle 2-core machine
test: setup
	WANDB_MODE=disabled $(PY) -m pytest -q -m "not slow"

# everything: the unit tier, then the integration and end-to-end tier (training, ensembles, faults, real
# multi-process launches; about 10 minutes on 2 cores). What CI runs.
test-all: setup
	WANDB_MODE=disabled $(PY) -m pytest -q

clean-demo:
	rm -rf $(DEMO)
