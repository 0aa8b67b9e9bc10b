# The two commands a newcomer needs: `make demo` and `make test`. Both set everything up.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install demo test test-unit test-integration bench model clean lock

$(BIN)/.installed: pyproject.toml infra/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c infra/constraints.txt -e '.[dev]'
	touch $@

# Re-pin every dependency to what a fresh install of pyproject.toml resolves today.
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv && .lock-venv/bin/pip install -q -e '.[dev]'
	{ sed -n 1,2p infra/constraints.txt; .lock-venv/bin/pip freeze --exclude-editable | grep -v '^cutout' | sort -f; } > infra/constraints.txt.new
	mv infra/constraints.txt.new infra/constraints.txt && rm -rf .lock-venv

install: $(BIN)/.installed

demo: install
	$(BIN)/cutout demo --out demo-output

# The review page's browser tests leave their screenshots in test-artifacts/ (ignored by git).
test: install
	CUTOUT_TEST_ARTIFACTS=test-artifacts $(BIN)/python -m pytest -q

test-unit: install
	$(BIN)/python -m pytest -q tests/unit

test-integration: install
	CUTOUT_TEST_ARTIFACTS=test-artifacts $(BIN)/python -m pytest -q tests/integration

# Rebuild the shipped bundle from the CCP dev data (../shared/data/ccp beside the checkout, or
# DATA=...) and its unannotated photos (UNLABELLED=...): studio-style composites; a first bundle
# (the first stage in two legs, the second stage and its fine-tuning with bags), calibrated, that
# pseudo-labels the unannotated photos; then both stages carried on, the first with the
# pseudo-labels, each second stage behind its own first. Every leg stops at its time budget.
# The bundle is calibrated, and quantized to int8 for CPUs without native bfloat16.
# The model card (cutout/segmentation/default_model/README.md) gives each leg's time and figures.
DATA ?= ../shared/data/ccp
UNLABELLED ?= $(DATA)-unlabelled
SHIPPED := cutout/segmentation/default_model
TRAIN := $(BIN)/cutout train
FIRST := --name unet-studio-first --size 288x192 --stop-on dice --negative-weight 2 --weights-dtype float16
SECOND := --name unet-studio-second --size 384x256 --stop-on dice --negative-weight 2 --dilate 0.045 --dilate-jitter 0.02 --weights-dtype float16
model: install
	@test -d $(DATA)/labels || { echo "make model needs the CCP dev data (images/, masks/, labels/, labels.txt) at $(DATA); set DATA=/path/to/ccp" >&2; exit 1; }
	@test -d $(UNLABELLED) || { echo "make model needs the unannotated CCP photos at $(UNLABELLED); set UNLABELLED=/path/to/ccp-unlabelled" >&2; exit 1; }
	$(BIN)/cutout studio-data $(DATA) --out runs/mix-train --split all --variants 1 --street --size 864x576
	$(BIN)/cutout studio-data $(DATA) --out runs/mix-bags --split all --variants 1 --street --size 864x576 --bags 0.6
	$(BIN)/cutout studio-data $(DATA) --out runs/studio-val --split val --views
	$(TRAIN) runs/mix-train --out runs/b-first-s --name unet-studio-first --size 192x128 --base-filters 16 --epochs 60 --patience 6 --stop-on dice --negative-weight 2 --budget-minutes 14
	$(TRAIN) runs/mix-train --out runs/b-first --init-from runs/b-first-s $(FIRST) --epochs 60 --patience 5 --budget-minutes 26
	$(TRAIN) runs/mix-train --out runs/b-second --second-pass runs/b-first --init-from runs/b-first $(SECOND) --epochs 60 --patience 4 --budget-minutes 38
	$(TRAIN) runs/mix-bags --out runs/b-second-bags --second-pass runs/b-first --init-from runs/b-second $(SECOND) --learning-rate 1e-4 --epochs 60 --patience 4 --budget-minutes 20
	rm -rf runs/b-bundle && mkdir -p runs/b-bundle && cp -r runs/b-first runs/b-bundle/first && cp -r runs/b-second-bags runs/b-bundle/second
	$(BIN)/cutout calibrate runs/studio-val --model runs/b-bundle
	$(BIN)/cutout pseudo-label $(UNLABELLED) --out runs/pseudo --model runs/b-bundle
	$(TRAIN) runs/mix-train --out runs/c-first --init-from runs/b-first $(FIRST) --learning-rate 1.5e-4 --epochs 100 --patience 6 --budget-minutes 95
	$(TRAIN) runs/mix-bags --out runs/c-second --second-pass runs/c-first --init-from runs/b-second-bags $(SECOND) --learning-rate 1e-4 --epochs 60 --patience 4 --budget-minutes 88
	$(TRAIN) runs/mix-train --out runs/d-first --train-only runs/pseudo --init-from runs/c-first $(FIRST) --learning-rate 7.5e-5 --epochs 100 --patience 6 --budget-minutes 95
	$(TRAIN) runs/mix-bags --out runs/d-second --second-pass runs/d-first --init-from runs/c-second $(SECOND) --learning-rate 5e-5 --epochs 60 --patience 4 --budget-minutes 104
	rm -rf $(SHIPPED)/first $(SHIPPED)/second && mkdir -p $(SHIPPED)/first $(SHIPPED)/second
	cd runs/d-first && cp model.json model.weights.h5 training_log.csv curves.png validation.json ../../$(SHIPPED)/first/
	cd runs/d-second && cp model.json model.weights.h5 training_log.csv curves.png validation.json ../../$(SHIPPED)/second/
	$(BIN)/cutout calibrate runs/studio-val --model $(SHIPPED) --plots $(SHIPPED)
	$(BIN)/cutout quantize runs/studio-val --model $(SHIPPED)
	CUTOUT_INFERENCE_PRECISION=float32 $(BIN)/cutout evaluate runs/studio-val --model $(SHIPPED) --json > $(SHIPPED)/evaluation.json

bench: install
	$(BIN)/python bench/inference.py
	$(BIN)/python bench/quality.py

clean:
	rm -rf $(VENV) demo-output .pytest_cache
