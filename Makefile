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

test: install
	$(BIN)/python -m pytest -q

test-unit: install
	$(BIN)/python -m pytest -q tests/unit

test-integration: install
	$(BIN)/python -m pytest -q tests/integration

# Rebuild the shipped model from the CCP dev data, exactly as it was made (about 3.5 h on 2 cores;
# see its model card, cutout/segmentation/default_model/README.md): the street model first,
# then studio-style composites, three fine-tuning runs of the first stage, the second stage on
# the garment's box (on the third run's predictions), then both stages fine-tuned with the
# person's other parts weighed (--negative-weight), and calibration (with flip TTA) on studio
# validation. The runs before the last two used a fixed learning rate (--lr-patience 0), from
# before the plateau rule became the default.
DATA ?= ../shared/data/ccp
SHIPPED := cutout/segmentation/default_model
model: install
	$(BIN)/cutout train $(DATA) --out runs/first --name unet-ccp-first --size 288x192 --epochs 30 --patience 5 --stop-on dice --lr-patience 0
	$(BIN)/cutout studio-data $(DATA) --out runs/mix-train --split all --variants 1 --street --size 864x576
	$(BIN)/cutout studio-data $(DATA) --out runs/studio-val --split val --views
	$(BIN)/cutout train runs/mix-train --out runs/studio-first --name unet-studio-first --size 288x192 --init-from runs/first --epochs 10 --patience 4 --stop-on dice --lr-patience 0
	$(BIN)/cutout train runs/mix-train --out runs/studio-first2 --name unet-studio-first --size 288x192 --init-from runs/studio-first --epochs 8 --patience 3 --lr-patience 0
	$(BIN)/cutout train runs/mix-train --out runs/studio-first3 --name unet-studio-first --size 288x192 --init-from runs/studio-first2 --epochs 6 --patience 3 --lr-patience 0
	$(BIN)/cutout train runs/mix-train --out runs/studio-second --name unet-studio-second --size 384x256 --second-pass runs/studio-first3 --init-from runs/studio-first3 --epochs 10 --patience 3 --lr-patience 0
	$(BIN)/cutout train runs/mix-train --out runs/studio-first-neg --name unet-studio-first --size 288x192 --init-from runs/studio-first3 --epochs 30 --patience 5 --lr-patience 2 --stop-on dice --negative-weight 2 --budget-minutes 28
	$(BIN)/cutout train runs/mix-train --out runs/studio-second-neg --name unet-studio-second --size 384x256 --second-pass runs/studio-first3 --init-from runs/studio-second --epochs 20 --patience 4 --lr-patience 2 --stop-on dice --negative-weight 2 --budget-minutes 30
	rm -rf $(SHIPPED)/first $(SHIPPED)/second && mkdir -p $(SHIPPED)/first $(SHIPPED)/second
	cd runs/studio-first-neg && cp model.json model.weights.h5 training_log.csv curves.png validation.json ../../$(SHIPPED)/first/
	cd runs/studio-second-neg && cp model.json model.weights.h5 training_log.csv curves.png validation.json ../../$(SHIPPED)/second/
	$(BIN)/cutout calibrate runs/studio-val --model $(SHIPPED) --plots $(SHIPPED)
	$(BIN)/cutout evaluate runs/studio-val --model $(SHIPPED) --json > $(SHIPPED)/evaluation.json

bench: install
	$(BIN)/python bench/inference.py
	$(BIN)/python bench/quality.py

clean:
	rm -rf $(VENV) demo-output .pytest_cache
