# streamdrift — the two commands a newcomer needs: `make demo` and `make test`.
# Each creates the virtual environment, installs the project, fetches the Kafka jars (cached
# in .cache/), and does its job. Needs Python 3.11, a JDK (17+), Maven and Go (for Alertmanager,
# built from source once) on PATH (and openssl for the secured-broker tests).

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
SUDO   ?= $(if $(filter 0,$(shell id -u)),,sudo)
export STREAMDRIFT_CACHE_DIR ?= $(CURDIR)/.cache
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: test demo bench kafka venv jars browser alertmanager clean lock

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip uv
	$(VENV)/bin/uv pip install -q --python $(PY) -c constraints.txt -e '.[test]'
	touch $@

venv: $(VENV)/.installed

jars: venv
	$(PY) -c "from monitor.dev.kafka import ensure_jars; print('kafka jars:', ensure_jars())"

# headless Chromium for the page tests: Debian's package (Playwright drives it; its own
# browser download is not used)
browser:
	@command -v chromium >/dev/null 2>&1 || { echo "installing headless Chromium (apt-get)"; \
	  $(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

## Alertmanager built from source (Go on PATH, the Go module proxy), cached in .cache/.
alertmanager: venv
	$(PY) -m monitor.dev.alertmanager

## make test: the whole suite, integration tests against a real local Kafka broker and a real
## Alertmanager included.
test: jars alertmanager browser
	$(PY) -m pytest

## make demo: local Kafka, synthetic traffic with drift, a quality fault and delayed labels
## (outcomes on their own topic) with a performance drop in one channel,
## the monitor watching it; windows, verdicts, alerts and triggers shown as they happen.
demo: jars
	$(PY) -m monitor.cli demo

## make bench: every benchmark; figures go to bench/RESULTS.md and bench/results.json.
bench: jars
	$(PY) -m bench.bench_kafka
	$(PY) -m bench.bench_kernels
	$(PY) -m bench.bench_e2e
	$(PY) -m bench.bench_e2e_labels
	$(PY) -m bench.bench_alerts
	$(PY) -m bench.bench_quality
	$(PY) -m bench.faults
	$(PY) -m bench.bench_forest
	$(PY) -m bench.bench_detection
	$(PY) -m bench.bench_slices
	$(PY) -m bench.bench_versions

## make kafka: a local broker in the foreground (Ctrl-C stops it).
kafka: jars
	$(PY) -m monitor.cli dev-kafka

## make lock: re-resolve and record the dependency set CI installs.
lock:
	$(VENV)/bin/uv pip compile pyproject.toml --extra test -o constraints.txt -q

clean:
	rm -rf $(VENV) .pytest_cache demo-out test-output
