# The two set-up commands of the README: `make up` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 7000
DIR ?= .kvcluster

.PHONY: up test venv deps lint bench clean docs

$(BIN)/kvcluster: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(BIN)/kvcluster

venv: $(BIN)/kvcluster

# Start the local cluster in the foreground: a leader, 2 replicas, 3 sentinels (Ctrl-C stops it).
up: venv
	$(BIN)/kvcluster up --port $(PORT) --dir $(DIR)

# Debian packages the tests drive for real: redis-cli, redis-benchmark, and a
# real redis-server to compare against.
deps:
	@if ! command -v redis-cli >/dev/null || ! command -v redis-server >/dev/null || ! command -v redis-sentinel >/dev/null; then \
		if [ "$$(id -u)" = 0 ]; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-tools redis-server redis-sentinel; \
		else \
			sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-tools redis-server redis-sentinel; \
		fi; \
	fi

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: deps venv lint
	$(BIN)/pytest -q -p no:cacheprovider

# Regenerate docs/configuration.md from the settings definitions (tests/test_config_reference.py checks it).
docs: venv
	$(BIN)/kvcluster config-reference all > docs/configuration.md

bench: venv deps
	$(BIN)/python bench/redis_benchmark_compare.py

clean:
	rm -rf $(VENV) build *.egg-info
