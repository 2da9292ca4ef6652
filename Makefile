# Pallet: `make serve` runs the index on the embedded default; `make test` runs every suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: install serve test test-fast lint bench bench-quick clean postgres dist

# The last uv with `publish --direct` (removed in 0.12.7) lives apart from the current uv.
UV_DIRECT := $(VENV)/uv-direct/bin/uv

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	$(BIN)/pip install -q --target $(VENV)/uv-direct 'uv==0.12.6'
	$(BIN)/pip install -q --target $(VENV)/twine-6.1 'twine==6.1.*'
	touch $@

install: $(BIN)/.installed

serve: install
	$(BIN)/pallet serve

postgres:
	@bash scripts/postgres.sh start

# The whole suite, on SQLite and on a real PostgreSQL started here.
# nginx (installed by scripts/nginx.sh when missing) fronts the replicas of tests/cluster;
# Debian's Chromium (scripts/chromium.sh) runs the web UI's browser tests (tests/browser).
# --dist worksteal: a worker that runs out takes queued tests from the other, so the long ones
# (tests/cluster, the crash tests) do not leave one core idle at the end (16:49 -> 13:10).
test: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports
	PALLET_TEST_NGINX="$$(bash scripts/nginx.sh)" \
	PALLET_TEST_CHROMIUM="$$(bash scripts/chromium.sh)" \
	PALLET_TEST_POSTGRES_URL="$$(bash scripts/postgres.sh start)" \
		$(BIN)/pytest -q -n 2 --dist worksteal $(PYTEST_ARGS)

# Only the in-process suites on SQLite (quick feedback while developing).
test-fast: install
	$(BIN)/pytest -q tests/unit tests/api tests/contract $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

# Every table is printed and appended to benchmarks/results/<date>.md (bench-quick: <date>-quick.md)
# under one header with the machine context, written once per run.
bench bench-quick: export PALLET_BENCH_RUN := $(shell date +%Y-%m-%dT%H:%M:%S)
bench-quick: export PALLET_BENCH_QUICK := 1

# One benchmark script; its duration goes to stderr.
bench_script = @t=$$(date +%s); $(BIN)/python benchmarks/$(1) || exit $$?; \
	echo "benchmarks/$(1): $$(( $$(date +%s) - t )) s" >&2

bench: install
	$(BIN)/pip install -q -e '.[bench]'
	$(call bench_script,read_path.py)
	$(call bench_script,upload.py)
	$(call bench_script,upload2_ops.py)
	$(call bench_script,publish.py)
	$(call bench_script,presigned.py)
	$(call bench_script,imports.py)
	$(call bench_script,db_latency.py)
	$(call bench_script,memory.py)
	$(call bench_script,web.py)
	$(call bench_script,proxy.py)
	$(call bench_script,search.py)

# The same tables at small sizes, in under 5 minutes on a 2-core machine.
bench-quick: install
	$(BIN)/pip install -q -e '.[bench]'
	$(call bench_script,read_path.py --quick --peer-projects 100)
	$(call bench_script,upload.py --size 64M)
	$(call bench_script,upload2_ops.py --releases 20 --sqlite-only)
	$(call bench_script,publish.py --size 64M --small-count 30 --releases 50)
	$(call bench_script,presigned.py --sizes 1M,64M --runs 3,1)
	$(call bench_script,imports.py --count 100)
	$(call bench_script,db_latency.py --quick)
	$(call bench_script,memory.py --quick)
	$(call bench_script,web.py --quick)
	$(call bench_script,proxy.py --quick)
	$(call bench_script,search.py --rounds 2)

# Pallet's own sdist and wheel, checked by twine, then installed as users do (a fresh venv and
# `uv tool install`) and started.
dist: install
	rm -rf dist
	$(BIN)/python -m build --outdir dist .
	$(BIN)/twine check --strict dist/*
	$(BIN)/python scripts/check_dist.py dist/pallet-*.whl

clean:
	rm -rf $(VENV) .pytest_cache
