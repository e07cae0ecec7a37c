# The two commands: `make demo` and `make test`. Everything else is a helper of theirs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 5000

.PHONY: install demo test lint typecheck pytest docs reliability bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade "pip>=25.1"

# Reinstall when the project metadata changes. --group needs pip >= 25.1 (installed above).
$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -q -e ".[sdk,sqlalchemy,postgresql,redis,pytest]" --group dev
	touch $(STAMP)

install: $(STAMP)

# The example backend in sandbox mode: the whole flow with no Alibaba account.
demo: $(STAMP)
	ALICERTIFY_SANDBOX=true DEMO_LOGIN=1 PORT=$(PORT) $(BIN)/python examples/backend/app.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check flask_alicertify pytest_alicertify tests examples bench docs

typecheck: $(STAMP)
	$(BIN)/mypy --strict

pytest: $(STAMP)
	$(BIN)/pytest

docs: $(STAMP)
	$(BIN)/python -m sphinx -W --keep-going -q -b html docs docs/_build/html/en
	$(BIN)/python -m sphinx -W --keep-going -q -b html -c docs -D language=zh_CN docs/zh_CN docs/_build/html/zh_CN
	cp docs/_templates/landing.html docs/_build/html/index.html

test: lint typecheck pytest

# Full-size reliability suite; writes docs/reliability.md.
reliability: $(STAMP)
	ALICERTIFY_RELIABILITY=full $(BIN)/pytest tests/reliability -p no:randomly -q -s

# Benchmarks never fail CI; this target exits non-zero when a target is missed.
bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache docs/_build
