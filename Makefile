# The two commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PEER_DIR := tests/peers

.PHONY: demo test lint unit bench clean

$(BIN)/python:
	scripts/system-deps.sh demo
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Reinstall only when the dependencies change.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install -q -e '.[test]'
	touch $@

$(PEER_DIR)/node_modules/.installed: $(PEER_DIR)/package.json $(PEER_DIR)/package-lock.json
	cd $(PEER_DIR) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

demo: $(VENV)/.installed
	$(BIN)/ocpp-bridge demo

lint: $(VENV)/.installed-test
	$(BIN)/ruff check bridge adapters tests bench
	$(BIN)/mypy

test:
	scripts/system-deps.sh test
	$(MAKE) --no-print-directory $(VENV)/.installed-test $(PEER_DIR)/node_modules/.installed
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory unit

# pytest's exit code 5 (no test collected) is a failure, not a pass.
unit: $(VENV)/.installed-test
	@$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests" >&2; exit 1; fi; exit $$rc

bench: $(VENV)/.installed-test
	$(BIN)/python bench/startup.py
	$(BIN)/python bench/outbox.py --no-profile
	$(BIN)/python bench/composite.py

clean:
	rm -rf $(VENV) $(PEER_DIR)/node_modules .pytest_cache .mypy_cache .ruff_cache
