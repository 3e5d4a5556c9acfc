# Two commands on a fresh machine (README "Quick start"): `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PORT   ?= 8501

APP_STAMP  := $(VENV)/.installed-app
TEST_STAMP := $(VENV)/.installed-test

.PHONY: run test lint format demo status clean

run: $(APP_STAMP) ## set up, then serve the dashboard on http://localhost:$(PORT)
	$(BIN)/streamlit run streamlit_app.py --server.port $(PORT)

test: $(TEST_STAMP) ## set up the test tools, lint, run the whole suite
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest

lint: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(TEST_STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

demo: $(APP_STAMP) ## a fresh demo database at the default path (stop the app first)
	$(BIN)/dtd demo

status: $(APP_STAMP)
	$(BIN)/dtd status

$(BIN)/python:
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { \
	  rm -rf $(VENV); \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    echo "python3 -m venv needs Debian's python3-venv; installing it"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null && \
	    $(PYTHON) -m venv $(VENV); \
	  else \
	    echo "error: '$(PYTHON) -m venv' failed. On Debian or Ubuntu run: sudo apt-get install python3-venv" >&2; \
	    exit 1; \
	  fi; }

$(APP_STAMP): $(BIN)/python requirements.txt pyproject.toml
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $@

$(TEST_STAMP): $(APP_STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache *.egg-info
