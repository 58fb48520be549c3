# The two commands: `make demo` and `make test`. Each creates .venv and installs what it needs.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint typecheck unit clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed-demo: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[demo]'
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed-demo

demo: $(VENV)/.installed-demo
	$(BIN)/plinth demo

lint: $(VENV)/.installed-test
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	# Trust boundaries: no connection, DuckDB or record-path join outside src/plinth/guards/.
	$(BIN)/python -m pytest -q -n 0 tests/security/test_guard_boundaries.py
	# Layers (docs/architecture.md): arrows point down, no package cycles, no private reaches.
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest -q -n 0 tests/test_layers.py

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy

# pytest exits 5 when it collected no tests: that is a failure here, never a pass.
# Three workers (pytest-xdist) on two cores: the suite waits on PostgreSQL, subprocesses and
# live servers (the team-server tests, the [remote] half of runs/datasets/models/monitors) as
# much as it computes, so a third process fills the waits. The browser tests share one worker
# (xdist_group "browser": one Chromium, one seeded server).
# `make test` has run the two lint suites already (see lint); `make unit` alone runs them too.
LINTED := tests/security/test_guard_boundaries.py tests/test_layers.py
# Byte-compiled once here: with PYTHONDONTWRITEBYTECODE set (as on CI's machines) every
# process the suite starts would compile each plinth module it imports again.
unit: $(VENV)/.installed-test
	$(BIN)/python -m compileall -q -j 0 src
	$(BIN)/python -m pytest -n 3 --dist loadgroup $(UNIT_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$rc

test: UNIT_ARGS := $(addprefix --ignore=,$(LINTED))
test: lint typecheck unit

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache plinth-demo
