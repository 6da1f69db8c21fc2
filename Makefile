# The README's two commands: `make demo` (a generated campus on SQLite, served on 127.0.0.1:8000) and
# `make test` (the whole suite on SQLite and PostgreSQL, with OpenLDAP; CI runs it through .ci/run).

VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: setup test lint demo

setup:
	./.ci/setup.sh

# pytest exit code 5 means "no tests collected": that is a broken suite, not a pass.
test: setup
	@status=0; $(BIN)/pytest $(PYTEST_ARGS) || status=$$?; \
	if [ $$status -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; \
	if [ $$status -ne 0 ]; then exit $$status; fi
	$(BIN)/ruff check .

lint: setup
	$(BIN)/ruff check .

# Demo mode turns on the development CAS page, the outbox of messages "sent" and the demo app: loopback only.
demo: export IDBROKER_DEMO_MODE = true
demo: setup
	$(BIN)/idbroker keys init
	$(BIN)/idbroker db upgrade
	$(BIN)/idbroker demo load
	$(BIN)/idbroker serve --host 127.0.0.1 --port 8000
