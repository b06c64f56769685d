# Two commands matter (see README): `make verify` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: setup verify test bench figures clean

setup: $(STAMP)

# One install from the project's own files; requirements/ci-constraints.txt pins the
# small CPU build of torch used on this project's machines and in CI, and Ray (extra
# `cluster`, so the suite tests the Ray backend too).
$(STAMP): pyproject.toml requirements/ci-constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade --quiet pip
	$(BIN)/python -m pip install -c requirements/ci-constraints.txt -e '.[empirics,test,cluster,algebra]'
	@# PHCpack (Debian package phcpack) is the second, homotopy route of `landscape enumerate`.
	@# CI (root on Debian) installs it; elsewhere `apt-get install phcpack` by hand, or its tests skip.
	@if [ -n "$$CI" ] && ! command -v phc >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then \
		(apt-get update -qq && apt-get install -y -qq phcpack) || echo "phcpack not installed: the homotopy tests will skip"; \
	fi
	touch $(STAMP)

verify: setup
	$(BIN)/python -m theory --out out/theory.json

test: setup
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python benchmarks/bench_landscape.py

clean:
	rm -rf $(VENV) out .pytest_cache .hypothesis
