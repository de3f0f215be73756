# Short verbs over CMake. `make` builds build/sked; `make run` starts sked dev;
# `make test` installs what is missing, builds, and runs every test (plain, ASan+UBSan, fuzz).
JOBS ?= $(shell nproc)
BUILD ?= build
ASAN_BUILD ?= build-asan
CTEST_ARGS ?=

.PHONY: all deps build run test test-plain test-asan test-fuzz bench format clean

all: build

deps:
	@bash scripts/deps.sh

$(BUILD)/Makefile: CMakeLists.txt
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null

build: $(BUILD)/Makefile
	cmake --build $(BUILD) -j $(JOBS)

run: deps build
	./$(BUILD)/sked dev

test-plain: deps build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) $(CTEST_ARGS)

# Every test but the cluster chaos test (label chaos, tests/tests.cmake), which the plain
# build runs.
test-asan: deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DSKED_SANITIZE=ON >/dev/null
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j $(JOBS) -LE chaos $(CTEST_ARGS)

# libFuzzer targets (clang) in build-fuzz, each run for a bounded time: 30 s when CI=true, else 10 s.
test-fuzz: deps
	FUZZ_BUILD=build-fuzz bash tests/fuzz/run.sh

test: test-plain test-asan test-fuzz

bench: deps build
	BUILD=$(BUILD) sh bench/run.sh

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) build-fuzz
