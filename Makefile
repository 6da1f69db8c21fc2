# The README's two commands: `make demo` (a generated campus on SQLite, served on 127.0.0.1:8000) and
# `make test` (the whole suite on SQLite and PostgreSQL, with OpenLDAP; CI runs it through .ci/run).

VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: setup test lint audit lock demo

setup:
	./.ci/setup.sh

# pytest exit code 5 means "no tests collected": that is a broken suite, not a pass.
test: setup
	@status=0; $(BIN)/pytest $(PYTEST_ARGS) || status=$$?; \
	if [ $$status -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; \
	if [ $$status -ne 0 ]; then exit $$status; fi
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(MAKE) --no-print-directory audit

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Known vulnerabilities in the pinned dependencies (requirements.lock) from PyPI's advisory data, the data
# `pip-audit -s pypi` reads, by a stdlib script that also copes with a PyPI mirror serving no per-release JSON.
audit:
	$(BIN)/python tests/security/lock_audit.py requirements.lock

# Pin what the venv holds (after a dependency change: pip install -e '.[test,bench]' first), header kept.
lock:
	{ sed -n '/^#/p' requirements.lock; $(BIN)/pip freeze --exclude-editable; } > requirements.lock.new
	mv requirements.lock.new requirements.lock

# Demo mode turns on the development CAS page, the outbox of messages "sent" and the demo app: loopback only.
demo: export IDBROKER_DEMO_MODE = true
demo: setup
	$(BIN)/idbroker keys init
	$(BIN)/idbroker db upgrade
	$(BIN)/idbroker demo load
	$(BIN)/idbroker serve --host 127.0.0.1 --port 8000
