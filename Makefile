# ganforge: the two quick-start commands.
#   make demo   set up (virtual environment + install) and train on the built-in digits
#   make test   set up and run the test suite (what .ci/run calls)
# A virtual environment that is already active is used as it is; otherwise .venv is created.

PYTHON ?= python3
ifdef VIRTUAL_ENV
VENV := $(VIRTUAL_ENV)
else
VENV := .venv
endif
PY := $(VENV)/bin/python
# The CPU build on these machines; set TORCH="torch" (or a CUDA wheel spec) elsewhere.
TORCH ?= torch==2.13.0
STAMP := $(VENV)/.ganforge-installed
PIP := $(PY) -m pip install --quiet --disable-pip-version-check

.PHONY: setup demo test test-slow clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -c "import torch" 2>/dev/null || $(PIP) "$(TORCH)"
	$(PIP) -e ".[test]"
	@touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(VENV)/bin/ganforge demo

test: setup
	$(PY) -m pytest -q

# Long quality runs, left out of `make test`.
test-slow: setup
	$(PY) -m pytest -q -m slow

clean:
	rm -rf runs .pytest_cache build src/*.egg-info
