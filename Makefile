# Two commands for a fresh machine:  `make demo`  (set up + run the main job)  and  `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
DEMO   ?= outputs/demo
# Folds the CPU demo trains (each holds out one run; see folds.yaml). All seven: DEMO_FOLDS="0 1 2 3 4 5 6".
DEMO_FOLDS ?= 0 3 6
export WANDB_MODE ?= offline

.PHONY: setup demo test clean-demo

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

# simulate -> train the demo folds -> fit thresholds out of fold -> ensemble the test runs -> score -> PNGs
demo: setup
	$(PY) simulate.py --out $(DEMO)/data --size demo --seed 0 --overwrite
	for fold in $(DEMO_FOLDS); do \
	  $(PY) train.py --fold $$fold --data $(DEMO)/data --out $(DEMO)/runs --preset cpu-demo --overwrite || exit 1; \
	done
	$(PY) ensemble.py --runs $(DEMO)/runs --data $(DEMO)/data --split test \
	  --out $(DEMO)/submission.csv --score --pictures $(DEMO)/pictures

test: setup
	WANDB_MODE=disabled $(PY) -m pytest -q

clean-demo:
	rm -rf $(DEMO)
