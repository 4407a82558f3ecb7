# Ember's front door. CMake does the building underneath, in build/ (build-asan/ for sanitizers).
#   make            build libember, the ember command and the examples (after installing deps)
#   make test       build and run the whole suite (ctest)
#   make test-asan  the suite under AddressSanitizer + UndefinedBehaviorSanitizer
#   make test-tsan  the suite under ThreadSanitizer (the scheduler and task threads)
#   make fuzz       every decoder under libFuzzer (clang), FUZZ_SECONDS each (default 60), in
#                   build-fuzz/ (tests/fuzz/run.sh; FUZZ_TARGETS="proto stage" for some)
#   make demo       word count of the bundled sample text on local[*]
#   make bench      benchmarks against their baselines (bench/README.md)
#   make chaos      fault injection into real clusters running the examples (docs/chaos.md);
#                   CHAOS_SHORT=1 (CI form), CHAOS_RUNS=N (seeded random runs), CHAOS_SEED=S
#                   (replay one run)
#   make deps       install missing Debian packages (scripts/install-deps.sh)
#   make format     clang-format every C file; make format-check checks only
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps build test test-asan test-tsan fuzz demo bench chaos format format-check clean install

all: build

deps:
	@scripts/install-deps.sh

$(BUILD)/CMakeCache.txt: | deps
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS)

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

test-asan: deps
	$(MAKE) BUILD=build-asan CMAKE_FLAGS="-DEMBER_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug" test

test-tsan: deps
	$(MAKE) BUILD=build-tsan CMAKE_FLAGS="-DEMBER_TSAN=ON -DCMAKE_BUILD_TYPE=Debug" test

fuzz:
	@EMBER_FUZZ_DEPS=1 scripts/install-deps.sh
	@FUZZ_BUILD=$(CURDIR)/build-fuzz JOBS=$(JOBS) tests/fuzz/run.sh

demo: build
	@scripts/demo.sh $(BUILD)

bench: build
	@bench/run.sh $(BUILD)

chaos: build
	@CHAOS_RUNS="$(CHAOS_RUNS)" CHAOS_SEED="$(CHAOS_SEED)" CHAOS_SHORT="$(CHAOS_SHORT)" \
		/usr/bin/python3 tests/chaos/chaos.py --build $(BUILD)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

format-check:
	clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h')

install: build
	cmake --install $(BUILD)

clean:
	rm -rf build build-asan build-tsan build-fuzz
