# The two commands a newcomer needs: `make demo` and `make test`. Both set everything up.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install demo test test-unit test-integration bench model clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

install: $(BIN)/.installed

demo: install
	$(BIN)/cutout demo --out demo-output

test: install
	$(BIN)/python -m pytest -q

test-unit: install
	$(BIN)/python -m pytest -q tests/unit

test-integration: install
	$(BIN)/python -m pytest -q tests/integration

# Rebuild the shipped model bundle from the CCP dev data (about 1 h on 2 cores; see its model card, cutout/segmentation/default_model/README.md).
DATA ?= ../shared/data/ccp
SHIPPED := cutout/segmentation/default_model
TRAIN_ARGS ?= --size 288x192 --epochs 30 --patience 5
model: install
	$(BIN)/cutout train $(DATA) --out runs/first --name unet-ccp-first $(TRAIN_ARGS)
	$(BIN)/cutout train $(DATA) --out runs/second --name unet-ccp-second --second-pass runs/first $(TRAIN_ARGS)
	for stage in first second; do rm -rf $(SHIPPED)/$$stage && mkdir -p $(SHIPPED)/$$stage && \
	  cp runs/$$stage/model.json runs/$$stage/model.weights.h5 runs/$$stage/training_log.csv runs/$$stage/curves.png $(SHIPPED)/$$stage/; done
	$(BIN)/cutout evaluate $(DATA) --model $(SHIPPED) --split val --json > $(SHIPPED)/evaluation.json

bench: install
	$(BIN)/python bench/inference.py
	$(BIN)/python bench/quality.py

clean:
	rm -rf $(VENV) demo-output .pytest_cache
