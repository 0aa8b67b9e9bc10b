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
# DATA=...): studio-style composites, the first stage in two legs, the second stage and its
# fine-tuning with bags, each within its time budget, then calibration and evaluation. The
# model card (cutout/segmentation/default_model/README.md) gives each leg's time and figures.
DATA ?= ../shared/data/ccp
SHIPPED := cutout/segmentation/default_model
model: install
	@test -d $(DATA)/labels || { echo "make model needs the CCP dev data (images/, masks/, labels/, labels.txt) at $(DATA); set DATA=/path/to/ccp" >&2; exit 1; }
	$(BIN)/cutout studio-data $(DATA) --out runs/mix-train --split all --variants 1 --street --size 864x576
	$(BIN)/cutout studio-data $(DATA) --out runs/mix-bags --split all --variants 1 --street --size 864x576 --bags 0.6
	$(BIN)/cutout studio-data $(DATA) --out runs/studio-val --split val --views
	$(BIN)/cutout train runs/mix-train --out runs/b-first-s --name unet-studio-first --size 192x128 --base-filters 16 --epochs 60 --patience 6 --stop-on dice --negative-weight 2 --budget-minutes 14
	$(BIN)/cutout train runs/mix-train --out runs/b-first --name unet-studio-first --size 288x192 --init-from runs/b-first-s --epochs 60 --patience 5 --stop-on dice --negative-weight 2 --budget-minutes 26 --weights-dtype float16
	$(BIN)/cutout train runs/mix-train --out runs/b-second --name unet-studio-second --size 384x256 --second-pass runs/b-first --init-from runs/b-first --epochs 60 --patience 4 --stop-on dice --negative-weight 2 --dilate 0.045 --dilate-jitter 0.02 --budget-minutes 38 --weights-dtype float16
	$(BIN)/cutout train runs/mix-bags --out runs/b-second-bags --name unet-studio-second --size 384x256 --second-pass runs/b-first --init-from runs/b-second --learning-rate 1e-4 --epochs 60 --patience 4 --stop-on dice --negative-weight 2 --dilate 0.045 --dilate-jitter 0.02 --budget-minutes 20 --weights-dtype float16
	rm -rf $(SHIPPED)/first $(SHIPPED)/second && mkdir -p $(SHIPPED)/first $(SHIPPED)/second
	cd runs/b-first && cp model.json model.weights.h5 training_log.csv curves.png validation.json ../../$(SHIPPED)/first/
	cd runs/b-second-bags && cp model.json model.weights.h5 training_log.csv curves.png validation.json ../../$(SHIPPED)/second/
	$(BIN)/cutout calibrate runs/studio-val --model $(SHIPPED) --plots $(SHIPPED)
	CUTOUT_INFERENCE_PRECISION=float32 $(BIN)/cutout evaluate runs/studio-val --model $(SHIPPED) --json > $(SHIPPED)/evaluation.json

bench: install
	$(BIN)/python bench/inference.py
	$(BIN)/python bench/quality.py

clean:
	rm -rf $(VENV) demo-output .pytest_cache
