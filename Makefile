# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.dlbox-installed

.PHONY: venv demo test lint clean

# The stamp is newer than pyproject.toml when the install is current, so `make venv` reuses .venv.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

demo: venv
	$(BIN)/dlbox demo

test: venv
	$(BIN)/python -m pytest -q

lint: venv
	$(BIN)/ruff check dlbox tests benchmarks

clean:
	rm -rf $(VENV) runs .pytest_cache
