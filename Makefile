# ferry: the two commands a fresh machine needs are `make run` and
# `make test`; both install what is missing first (scripts/install-deps.sh).
#
#   make run     build, then run the main job (the two-process frame
#                exchange, `ferry demo`) and a short benchmark table
#   make test    build with -Werror and run ctest, then the same as a
#                32-bit program with the 32/64-bit interop test (make
#                test-32), then under AddressSanitizer +
#                UndefinedBehaviorSanitizer, then as Windows programs under
#                Wine (make test-win), then the fuzzers (make fuzz)
#   make test-win  cross-build for Windows (mingw-w64) and run the whole
#                ctest suite under Wine
#   make fuzz    build the libFuzzer targets (clang) and run each for
#                FUZZ_TIME seconds (15: 60 s for the four) on a copy of
#                its seed corpus
#   make bench   build (optimised) and run the benchmarks
#   make format  clang-format the sources; make format-check to verify

BUILD      ?= build
ASAN_BUILD ?= build-asan
BUILD32    ?= build-32
FUZZ_BUILD ?= build-fuzz
WIN_BUILD  ?= build-win
FUZZ_TIME  ?= 15
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CTEST_ARGS ?= --output-on-failure
FERRY      := $(BUILD)/ferry

.PHONY: all deps build build-asan build-32 build-win run test test-plain \
        test-asan test-32 test-win bench \
        fuzz fuzz-build fuzz-seeds format format-check install clean

all: build

deps:
	@sh scripts/install-deps.sh

# Every component on, whatever an earlier configure cached.
ALL_ON := -DFERRY_BUILD_TESTS=ON -DFERRY_BUILD_TOOLS=ON -DFERRY_BUILD_BENCH=ON

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFERRY_WERROR=ON \
	      $(ALL_ON)
	cmake --build $(BUILD) -j$(JOBS)

build-asan: deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DFERRY_WERROR=ON \
	      "-DFERRY_SANITIZE=address;undefined" $(ALL_ON)
	cmake --build $(ASAN_BUILD) -j$(JOBS)

# Windows: cross-built with mingw-w64 (cmake/x86_64-w64-mingw32.cmake).
build-win: deps
	cmake -S . -B $(WIN_BUILD) \
	      -DCMAKE_TOOLCHAIN_FILE=cmake/x86_64-w64-mingw32.cmake \
	      -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFERRY_WERROR=ON $(ALL_ON)
	cmake --build $(WIN_BUILD) -j$(JOBS)

# The main job: one process hands 3 MiB frames to another, which verifies
# every byte and acknowledges each frame; then a short benchmark table.
run: build
	$(FERRY) demo
	$(FERRY) bench --quick

test: test-plain test-32 test-asan test-win fuzz

test-plain: build
	ctest --test-dir $(BUILD) $(CTEST_ARGS)

test-asan: build-asan
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	FERRY_TEST_TIMEOUT_MULTIPLIER=3 \
	ctest --test-dir $(ASAN_BUILD) $(CTEST_ARGS)

# The same ctest suite, as Windows programs under Wine.
test-win: build-win
	sh scripts/wine-test.sh $(WIN_BUILD) $(CTEST_ARGS)

# The whole suite as an i386 program (gcc -m32), then the interop test in
# both builds: a 32-bit and a 64-bit process share segments and channels.
# FERRY_INTEROP_PEER gives each build's interop test the other build; without
# it that test skips.
build-32: deps
	cmake -S . -B $(BUILD32) -DCMAKE_TOOLCHAIN_FILE=$(CURDIR)/cmake/i386-linux-gnu.cmake \
	      -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFERRY_WERROR=ON
	cmake --build $(BUILD32) -j$(JOBS)

ifeq ($(shell uname -m),x86_64)
test-32: build build-32
	FERRY_INTEROP_PEER=$(abspath $(BUILD)) ctest --test-dir $(BUILD32) $(CTEST_ARGS)
	FERRY_INTEROP_PEER=$(abspath $(BUILD32)) ctest --test-dir $(BUILD) $(CTEST_ARGS) -R '^interop$$'
else
test-32:
	@echo "test-32: skipped: gcc -m32 (i386) needs an x86-64 host, not $(shell uname -m)"
endif

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
	rm -rf $(BUILD) $(ASAN_BUILD) $(BUILD32) $(FUZZ_BUILD) $(WIN_BUILD)
