# Two commands a fresh machine needs: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

## Install, then serve GraphQL (and GraphiQL) at http://127.0.0.1:8000/graphql on ./sessionhub.db
run: $(STAMP)
	@echo "Get a token for GraphiQL with: $(BIN)/sessionhub token --user alice --entity acme"
	$(BIN)/sessionhub serve

## Install, then run the whole test suite and the linter (starts Redis on 127.0.0.1:6379 if nothing answers there).
## The tests marked both_paths (they read every type of the schema) run again with the fast path off.
test: $(STAMP)
	./.ci/ensure-services
	$(BIN)/pytest -q
	SESSIONHUB_FAST_PATH=false $(BIN)/pytest -q -m both_paths
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## Lint and check formatting
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) *.egg-info
