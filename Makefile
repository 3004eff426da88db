# Baton: `make run` (embedded default), `make test`, `make lint`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# uv writes and reads uv.lock; its version is pinned so that `make lock` writes the same lock
# everywhere (deploy/Dockerfile names the same version; tests/test_lock.py checks both).
UV_VERSION := 0.13.9
UV := $(VENV)/bin/uv

.PHONY: run test lint fmt install lock messages check-test-binaries bench bench-compare bench-tokens bench-ledger check-bench-binaries agents

# Installs exactly what uv.lock pins (hash-checked), then Baton itself without resolving
# anything. --locked refuses a lock that no longer matches pyproject.toml: run `make lock`.
$(STAMP): pyproject.toml uv.lock
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet uv==$(UV_VERSION)
	$(UV) export --locked --extra dev --no-emit-project --quiet -o $(VENV)/requirements.txt
	$(UV) pip install --python $(PY) --quiet --require-hashes -r $(VENV)/requirements.txt
	$(UV) pip install --python $(PY) --quiet --no-deps -e .
	@touch $(STAMP)

install: $(STAMP)

# Refresh uv.lock after editing the requirements in pyproject.toml. It keeps every version
# already pinned and resolves only what changed, so it is repeatable and reviewable; add
# LOCK_ARGS=--upgrade to move every pin to the newest version pyproject.toml allows, or
# LOCK_ARGS='--upgrade-package NAME' for one package.
lock:
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet uv==$(UV_VERSION)
	$(UV) lock $(LOCK_ARGS)

# The whole product on one machine: SQLite, no Redis, a file-based Celery
# broker, and the built-in fake upstream as a demo provider.
run: $(STAMP)
	DEBUG=1 $(PY) manage.py migrate --no-input
	DEBUG=1 $(PY) scripts/run_embedded.py

check-test-binaries:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || { echo "PostgreSQL server binaries are missing: apt-get install postgresql"; exit 1; }
	@command -v redis-server >/dev/null || { echo "redis-server is missing: apt-get install redis-server"; exit 1; }
	@command -v chromium >/dev/null || { echo "chromium is missing (browser tests): apt-get install chromium"; exit 1; }

# The real coding-agent CLIs the `agents` tests drive (Claude Code, Codex CLI): exactly the
# versions and hashes tests/agents/package-lock.json pins, from the npm registry. Runs npm only
# when the lock changed, so it is quick when already installed; `make test` never downloads
# them (the agents tests fail, saying to run this, when they are missing).
AGENTS_DIR := tests/agents
AGENTS_STAMP := $(AGENTS_DIR)/node_modules/.installed-stamp
$(AGENTS_STAMP): $(AGENTS_DIR)/package.json $(AGENTS_DIR)/package-lock.json
	@command -v npm >/dev/null || { echo "npm is missing (agent CLI tests): apt-get install npm"; exit 1; }
	cd $(AGENTS_DIR) && npm ci --include=optional --no-audit --no-fund --loglevel=warn
	@touch $@

agents: $(AGENTS_STAMP)

# The whole suite on throwaway PostgreSQL and Redis servers plus headless Chromium; then the
# quota suite again with REDIS_URL on a local Redis Cluster (about a minute and a half), so
# that every script call and key layout holds on a cluster too (CLUSTER_TESTS= skips it).
CLUSTER_TESTS ?= tests/quotas
test: $(STAMP) check-test-binaries
	BATON_TESTING=1 $(PY) scripts/services.py -- $(PY) -m pytest $(PYTEST_ARGS)
	$(if $(CLUSTER_TESTS),BATON_TESTING=1 $(PY) scripts/services.py --redis cluster -- $(PY) -m pytest $(CLUSTER_TESTS))

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	BATON_TESTING=1 DEBUG=1 $(VENV)/bin/mypy .
	$(VENV)/bin/lint-imports --no-cache

fmt: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# Regenerate the translation catalogs after changing strings (needs gettext).
messages: $(STAMP)
	DEBUG=1 $(PY) manage.py makemessages -l zh_Hans --ignore='.venv/*' --ignore='staticfiles/*'
	DEBUG=1 $(PY) manage.py compilemessages --ignore='.venv/*'

# The benchmark: Baton in its production configuration (PostgreSQL, Redis, uvicorn with one
# worker per core) against the fake upstream, with wrk and bench/loadgen.py (about 8½ minutes),
# then the prompt bound (about a minute), the quota script's Redis CPU (bench/quota_cost.py,
# half a minute), replication and the ledger (bench/ledger.py, about 20 minutes).
# Results in bench/results/ (git-ignored), copied into BENCHMARKS.md by bench/update_docs.py.
check-bench-binaries:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || { echo "PostgreSQL server binaries are missing: apt-get install postgresql"; exit 1; }
	@command -v redis-server >/dev/null || { echo "redis-server is missing: apt-get install redis-server"; exit 1; }
	@command -v wrk >/dev/null || { echo "wrk is missing (the saturated load generator): apt-get install wrk"; exit 1; }

bench: $(STAMP) check-bench-binaries
	$(PY) scripts/services.py -- $(PY) bench/run.py $(BENCH_ARGS)
	$(PY) bench/tokens.py
	BATON_TESTING=1 $(PY) bench/quota_cost.py
	$(PY) bench/replication.py
	$(PY) scripts/services.py -- $(PY) bench/ledger.py $(LEDGER_ARGS)
	$(PY) bench/update_docs.py

# The partitioned usage ledger alone (bench/ledger.py; about 20 minutes at its default sizes,
# which LEDGER_ARGS changes, e.g. LEDGER_ARGS="--ledger-rows 100000000").
bench-ledger: $(STAMP)
	$(PY) scripts/services.py -- $(PY) bench/ledger.py $(LEDGER_ARGS)
	$(PY) bench/update_docs.py

# Prompt tokens alone (about a minute, no services): the bound and the estimate of
# wire/tokens.py against real tokenizers on the adversarial corpus, and their CPU cost.
bench-tokens: $(STAMP)
	$(PY) bench/tokens.py
	$(PY) bench/update_docs.py

# The same saturated and streaming load through the LiteLLM proxy (its own venv), with Baton
# measured in the same run; reports Baton's figures as ratios to LiteLLM's.
LITELLM_VENV := bench/.litellm-venv
$(LITELLM_VENV)/bin/litellm:
	$(PYTHON) -m venv $(LITELLM_VENV)
	$(LITELLM_VENV)/bin/pip install --quiet 'litellm[proxy]==1.108.7'

bench-compare: $(STAMP) check-bench-binaries $(LITELLM_VENV)/bin/litellm
	$(PY) scripts/services.py -- $(PY) bench/run.py --compare $(BENCH_ARGS)
	$(PY) bench/update_docs.py
