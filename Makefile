# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.dlbox-installed

.PHONY: venv demo test lint clean espeak-ng chromium slurm

# The stamp is newer than pyproject.toml when the install is current, so `make venv` reuses .venv.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	# facenet-pytorch pins torch<2.3: --no-deps. Only its MTCNN weight files and the tests' parity reference.
	$(BIN)/python -m pip install --quiet --no-deps facenet-pytorch==2.6.0
	touch $(STAMP)

venv: $(STAMP)

demo: venv
	$(BIN)/dlbox demo

# The speech tests generate their corpus with espeak-ng (Debian package; CI runs as root).
espeak-ng:
	command -v espeak-ng >/dev/null || (apt-get update && apt-get install -y espeak-ng)

# The page test of `dlbox serve` drives Debian's chromium headless through its chromedriver (Selenium).
chromium:
	command -v chromedriver >/dev/null || (apt-get update && apt-get install -y chromium chromium-driver)

# The cluster tests start a one-node SLURM cluster of their own (munged, slurmctld, slurmd; tests/cluster/slurm.py).
slurm:
	command -v slurmctld >/dev/null || (apt-get update && apt-get install -y slurm-wlm munge)

# Two pytest workers (pytest-xdist): much of the suite is single-threaded (process start-up, imports), so two
# cores finish it sooner; tests sharing a session fixture stay in one worker (tests/conftest.py). pytest < 9:
# xdist's --dist loadgroup marks a test's group in its node id, which pytest 9's structured ids ignore.
# PYTEST_ARGS: extra pytest options (.ci/run adds --durations=15 so the suite's time stays visible).
TEST_WORKERS ?= 2
test: venv espeak-ng chromium slurm
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check dlbox tests benchmarks
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) runs .pytest_cache
