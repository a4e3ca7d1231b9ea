# streamsense — run `make help` for the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
SS      := $(BIN)/streamsense
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# CPU TensorFlow by default; `make setup EXTRA=gpu` on a CUDA host.
EXTRA   ?= cpu
STAMP   := $(VENV)/.installed-$(EXTRA)
PYTEST_ARGS ?=
SAMPLES ?= $${STREAMSENSE_HOME:-$$HOME/.cache/streamsense}/samples
# 0 runs until Ctrl-C
DEMO_SECONDS ?= 90

.PHONY: help setup system-deps test-deps python-deps kafka-jars demo test lint format bench-transport stack-up stack-down clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

setup: system-deps python-deps kafka-jars ## install everything a fresh machine lacks

system-deps: ## Debian packages when missing: redis-server, Java 17, Maven, Node/npm
	@missing=""; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v java >/dev/null || missing="$$missing openjdk-17-jre-headless"; \
	command -v mvn >/dev/null || missing="$$missing maven"; \
	command -v npm >/dev/null || missing="$$missing nodejs npm"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -q && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi

# gst-rtsp-server through PyGObject (the system Python) serves the RTSP camera of the tests:
# videotestsrc (plugins-base), jpegenc and rtpjpegpay (plugins-good)
GST_TEST_PKGS := python3-gi gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0 \
                 gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good

test-deps: ## Debian packages the tests use: chromium (never a downloaded browser), GStreamer's RTSP server
	@missing=""; \
	test -x /usr/bin/chromium || missing="chromium"; \
	for p in $(GST_TEST_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -q && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi

python-deps: $(STAMP) ## virtualenv with streamsense and its dependencies (pip cache is outside the repo)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[$(EXTRA),dev]'
	@touch $@

kafka-jars: python-deps ## resolve the Kafka broker + tools jars with Maven into ~/.cache/streamsense
	$(BIN)/python -c "from streamsense.services.local.kafka import ensure_jars; from streamsense.services.settings import default_home; print(ensure_jars(default_home()))"

stack-up: setup ## start the local Kafka + Redis
	$(SS) local up

stack-down: ## stop the local Kafka + Redis
	-$(SS) local down

demo: setup ## start the local stack, fetch the models, run the whole pipeline on sample data
	$(SS) local up
	$(SS) topics create
	$(SS) models fetch
	$(SS) samples make "$(SAMPLES)"
	$(SS) demo run --seconds $(DEMO_SECONDS) --samples "$(SAMPLES)"

lint: python-deps ## ruff (lint + format check), mypy, and the layering contracts (import-linter)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy -p streamsense
	$(BIN)/lint-imports

format: python-deps ## apply ruff's formatting and import order
	$(BIN)/ruff check --fix -q . ; $(BIN)/ruff format -q .

test: setup test-deps lint ## install, start a real Kafka + Redis for the session, run every test
	@report=$$(mktemp -t streamsense-pytest.XXXXXX); \
	PYTEST_REPORT_FILE=$$report $(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -ne 0 ] && [ -s $$report ]; then echo "== what failed (tests/session_report.py) =="; cat $$report; fi; \
	rm -f $$report; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: that is a failure here"; exit 1; fi; \
	exit $$rc

bench-transport: setup ## transport benchmark at 200 kB and 1 kB records (needs `make stack-up`)
	$(SS) bench transport --record-bytes 200000 --json bench-results/transport-200k.json
	$(SS) bench transport --record-bytes 1000 --json bench-results/transport-1k.json

clean: stack-down ## remove the virtualenv and caches in the repo
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
