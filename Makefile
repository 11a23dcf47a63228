# Entry points: `make test` (all tests, plus the C tests under ASan/UBSan) and
# `make demo`. Both install missing Debian packages first and build with CMake.
MAKEFLAGS += --no-print-directory
JOBS    ?= $(shell nproc)
BUILD   ?= build
SANBUILD ?= build-san
CMAKE_FLAGS ?=

.PHONY: all bootstrap build test test-fast test-san demo bench clean

all: build

bootstrap:
	@bash scripts/bootstrap.sh

build: bootstrap
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

# The C tests again, built with AddressSanitizer + UndefinedBehaviorSanitizer
# (no CUDA, no Lua binding: the sanitizers check the core and its kernels).
test-san: bootstrap
	@cmake -S . -B $(SANBUILD) -DCMAKE_BUILD_TYPE=Debug -DLUNET_SANITIZE=ON -DLUNET_CUDA=OFF \
	       -DLUNET_BINDINGS=OFF >/dev/null
	@cmake --build $(SANBUILD) -j $(JOBS)
	@cd $(SANBUILD) && ctest --output-on-failure -j $(JOBS)

# Plain tests only (no sanitizer pass).
test-fast: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# Sanitizer pass first, then the full suite, so the last line is ctest's summary.
test: build test-san
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

demo: build
	@$(BUILD)/bin/lunet demo

bench: build
	@LUNET_BENCH=1 bash scripts/bootstrap.sh
	@bash bench/run.sh

clean:
	rm -rf $(BUILD) $(SANBUILD)
