# The README's commands. Each target sets up what it needs, so a fresh clone works.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: build rule-tests test test-vmalert lint tools browser bench demo clean contract

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements.lock
	touch $(STAMP)

tools: $(STAMP)
	$(PY) tools/install_tools.py

# Headless Chromium for the HTML report's browser test (apt-get install when root and missing).
browser: $(STAMP)
	$(PY) tools/install_browser.py

build: $(STAMP)
	$(PY) build.py

# The promtool unit tests of tests/rules/ as files, each spec beside its own build of the rules:
# run them with `.tools/bin/promtool test rules build-tests/rule-tests/*.yaml` (and promtool-2).
# Not under build/, which build.py replaces as a whole.
rule-tests: $(STAMP)
	$(PY) tests/alert_rules_gen.py build-tests/rule-tests

test: $(STAMP) tools browser
	$(PY) -m pytest

# Every rule unit test on VictoriaMetrics' vmalert-tool as well (`make test` runs a selection).
test-vmalert: $(STAMP) tools
	PDOBS_VMALERT_ALL=1 $(PY) -m pytest tests/test_vmalert_rules.py

lint: $(STAMP) tools build
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	.tools/bin/promtool check rules build/prometheus/recording-rules.yaml build/prometheus/alerts.yaml
	.tools/bin/promtool-2 check rules build/prometheus/recording-rules.yaml build/prometheus/alerts.yaml

# docs/benchmarks.md: alert detection latency/accuracy (promtool, both Prometheus lines), dashboard
# query cost recorded vs raw at 8/32/128 pods over 6 h, build and test cost. Under 20 min on 2 cores.
# BENCH_ARGS passes options, e.g. make bench BENCH_ARGS="--pods 8,32 --no-suite --out /tmp/b.md".
bench: $(STAMP) tools
	$(PY) -m bench.run $(BENCH_ARGS)

# Live, on 127.0.0.1: a simulated P/D deployment collapses, Prometheus (built rules) fires,
# Alertmanager (built routing) pages local PagerDuty/Slack stand-ins, then it heals and resolves.
# make demo SCENARIO=nixl_slow (build.py demo --list); make demo KEEP=1 keeps it live until Ctrl-C.
demo: $(STAMP) tools
	$(PY) build.py demo $(if $(SCENARIO),--scenario $(SCENARIO)) $(if $(KEEP),--keep)

# contract/vllm/: every vLLM version in contract/sources.yaml, read from its PyPI wheel (network;
# ~400 MB per wheel, downloaded one at a time to $TMPDIR and deleted). Not part of `make test`.
# The EPP part needs git clones: see contract/README.md.
contract: $(STAMP)
	$(PY) tools/refresh_contract.py vllm

clean:
	rm -rf build build-tests
