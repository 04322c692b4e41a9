# The two commands of the README: `make demo` and `make test`; `make install` (as root) for a service.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PEER_DIR := tests/peers

.PHONY: demo test lint unit bench bench-quick clean install

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
	$(BIN)/lint-imports

# systemd-analyze checks the unit (tests/test_systemd.py); Debian ships it in the package systemd.
test:
	scripts/system-deps.sh test
	@command -v systemd-analyze >/dev/null 2>&1 || { echo "Installing Debian package: systemd"; \
	  sudo=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
	  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends systemd; }
	$(MAKE) --no-print-directory $(VENV)/.installed-test $(PEER_DIR)/node_modules/.installed
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory unit
	$(MAKE) --no-print-directory bench-quick

# The tests are independent (free ports, their own directories, every process stopped by its pid), so
# they run in PYTEST_WORKERS worker processes (pytest-xdist; PYTEST_WORKERS=0: one process); those
# marked `alone` (a browser timed under CPU throttling) run after them, by themselves. pytest's exit
# code 5 (no test collected) is a failure when neither run collected a test.
PYTEST_WORKERS ?= 4
unit: $(VENV)/.installed-test
	@$(BIN)/python -m pytest -n $(PYTEST_WORKERS) -m "not alone" $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -ne 0 ] && [ $$rc -ne 5 ]; then exit $$rc; fi; \
	$(BIN)/python -m pytest -m alone $(PYTEST_ARGS); rc2=$$?; \
	if [ $$rc2 -eq 5 ]; then \
	  if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests" >&2; exit 1; fi; exit 0; \
	fi; exit $$rc2

bench: $(VENV)/.installed-test
	$(BIN)/python bench/startup.py
	$(BIN)/python bench/outbox.py --no-profile
	$(BIN)/python bench/composite.py
	$(BIN)/python bench/polling.py
	$(BIN)/python bench/scale.py
	$(BIN)/python bench/transfer.py
	$(BIN)/python bench/local_list.py
	$(BIN)/python bench/tls.py
	$(BIN)/python bench/page.py
	$(BIN)/python bench/reporting.py
	$(BIN)/python bench/ocpp_device.py

# Every benchmark with --quick (seconds each; in `make test`), so one that no longer runs fails the
# build. Each runs even after another failed; the figures are not judged.
BENCHES := startup outbox composite polling scale transfer local_list tls page reporting ocpp_device
bench-quick: $(VENV)/.installed-test
	@failed=; for b in $(BENCHES); do \
	  echo "== bench/$$b.py --quick"; $(BIN)/python bench/$$b.py --quick || failed="$$failed $$b"; \
	done; \
	if [ -n "$$failed" ]; then echo "error: benchmarks failed:$$failed" >&2; exit 1; fi

# The systemd service (README, "Install on a Raspberry Pi"), run as root from where the service will
# run it (e.g. /opt/ocpp-bridge): the venv (python3-venv installed only when missing; every Python
# package from PyPI), the sources compiled once (the service cannot write __pycache__), then
# `ocpp-bridge install-service`. Running it again keeps /etc/ocpp-bridge/config.yaml.
install: export PIP_ROOT_USER_ACTION := ignore
install: $(VENV)/.installed
	$(BIN)/python -m compileall -q bridge adapters
	$(BIN)/ocpp-bridge install-service

clean:
	rm -rf $(VENV) $(PEER_DIR)/node_modules .pytest_cache .mypy_cache .ruff_cache
