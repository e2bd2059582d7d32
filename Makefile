# zzhub — `make demo` runs the hub with simulated cameras, `make test` runs every test.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-test
DEMO_STAMP := $(VENV)/.installed

.PHONY: demo test lint system-deps bench clean

$(DEMO_STAMP): pyproject.toml
	scripts/make-venv.sh $(VENV) $(PYTHON)
	$(BIN)/pip install -q -e .
	touch $(DEMO_STAMP)

$(STAMP): pyproject.toml $(DEMO_STAMP)
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

demo: $(DEMO_STAMP)
	$(BIN)/zzhub demo $(if $(HOST),--host $(HOST)) $(if $(PORT),--port $(PORT))

# System packages the tests use: GStreamer's RTSP server (the test camera), Chromium (the
# browser), ffmpeg (HTTP/RTMP test servers), redis-server, iproute2 (loopback-only namespace).
system-deps:
	scripts/install-system-deps.sh

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

# Tests run inside a network namespace that has only `lo` when we can make one (root), so no
# test packet can leave 127.0.0.0/8 (see ../shared/MEDIA-NOTES.md). ZZHUB_TESTS_STRICT: the
# system packages were just installed, so a test needing one fails instead of skipping.
test: $(STAMP) system-deps lint
	ZZHUB_TESTS_STRICT=1 scripts/loopback-only.sh $(BIN)/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

bench: $(STAMP) system-deps
	BENCH=1 scripts/install-system-deps.sh
	scripts/loopback-only.sh $(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
