# ferry: the two commands a fresh machine needs are `make run` and
# `make test`; both install what is missing first (scripts/install-deps.sh).
#
#   make run     build, then run the main job (the two-process frame
#                exchange, `ferry demo`) and a short benchmark table
#   make test    build with -Werror and run ctest, then the same under
#                AddressSanitizer + UndefinedBehaviorSanitizer, then the
#                fuzzers (make fuzz)
#   make fuzz    build the libFuzzer targets (clang) and run each for
#                FUZZ_TIME seconds (20) on a copy of its seed corpus
#   make bench   build (optimised) and run the benchmarks
#   make format  clang-format the sources; make format-check to verify

BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
FUZZ_TIME  ?= 20
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CTEST_ARGS ?= --output-on-failure
FERRY      := $(BUILD)/ferry

.PHONY: all deps build build-asan run test test-plain test-asan bench \
        fuzz fuzz-build fuzz-seeds format format-check install clean

all: build

deps:
	@sh scripts/install-deps.sh

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFERRY_WERROR=ON
	cmake --build $(BUILD) -j$(JOBS)

build-asan: deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DFERRY_WERROR=ON \
	      "-DFERRY_SANITIZE=address;undefined"
	cmake --build $(ASAN_BUILD) -j$(JOBS)

# The main job: one process hands 3 MiB frames to another, which verifies
# every byte and acknowledges each frame; then a short benchmark table.
run: build
	$(FERRY) demo
	$(FERRY) bench --quick

test: test-plain test-asan fuzz

test-plain: build
	ctest --test-dir $(BUILD) $(CTEST_ARGS)

test-asan: build-asan
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	FERRY_TEST_TIMEOUT_MULTIPLIER=3 \
	ctest --test-dir $(ASAN_BUILD) $(CTEST_ARGS)

# libFuzzer targets (fuzz/): header validation, channel-header validation,
# ring record parsing, pool-header validation and handle parsing; a crash, leak, timeout or broken invariant fails.
fuzz-build: deps
	cmake -S . -B $(FUZZ_BUILD) -DCMAKE_C_COMPILER=clang \
	      -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFERRY_WERROR=ON -DFERRY_FUZZ=ON \
	      -DFERRY_BUILD_TESTS=OFF -DFERRY_BUILD_TOOLS=OFF -DFERRY_BUILD_BENCH=OFF
	cmake --build $(FUZZ_BUILD) -j$(JOBS) \
	      --target fuzz_header fuzz_chan_header fuzz_ring fuzz_pool fuzz_make_seeds

fuzz: fuzz-build
	sh fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_TIME)

# Rewrites the seed corpora from real segments and channels (after a layout
# change); commit the result.
fuzz-seeds: fuzz-build
	$(FUZZ_BUILD)/fuzz/fuzz_make_seeds fuzz/corpus

bench: build
	$(FERRY) bench
	$(BUILD)/bench/bench_segment

format:
	git ls-files '*.c' '*.h' | xargs clang-format -i

format-check:
	git ls-files '*.c' '*.h' | xargs clang-format --dry-run -Werror

install: build
	cmake --install $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
