# Two commands a fresh machine needs: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Every optional part, so that the server, the tests, the linter and the docs all run.
EXTRAS := mongo,export,titles,test,dev,docs

.PHONY: run test install lint docs schema clean

# setuptools tells every editable install to beware of a folder named like the package in
# the working directory; this repository has none, so that notice is only noise.
$(STAMP): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	PYTHONWARNINGS='ignore:Editable installation' $(BIN)/pip install --quiet -e '.[$(EXTRAS)]'
	touch $(STAMP)

install: $(STAMP)

## Install, then serve GraphQL (and GraphiQL) at http://127.0.0.1:8000/graphql on ./sessionhub.db
run: $(STAMP)
	@echo "Get a token for GraphiQL with: $(BIN)/sessionhub token --user alice --entity acme"
	$(BIN)/sessionhub serve

## Install, then run the whole test suite, the linters and the docs build (starts Redis on 127.0.0.1:6379 if nothing answers there).
## The tests marked both_paths (they read every type of the schema) run again with the fast path off.
test: $(STAMP)
	./.ci/ensure-services
	$(BIN)/pytest -q -n auto --dist loadgroup
	SESSIONHUB_FAST_PATH=false $(BIN)/pytest -q -m both_paths
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	./.ci/typecheck
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

## Build the documentation site into site/ (mkdocs serve for a live preview)
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

## Write the GraphQL SDL to schema.graphql (a test fails while it is stale)
schema: $(STAMP)
	$(BIN)/sessionhub schema --output schema.graphql

## Lint and check formatting
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	./.ci/typecheck

clean:
	rm -rf $(VENV) *.egg-info build site
