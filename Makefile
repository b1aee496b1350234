# Front end. `make demo` and `make test` are the two set-up commands in README.md.
JOBS ?= $(shell nproc)
BUILD ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
CMAKE_FLAGS ?=

.PHONY: all deps build debug test unit e2e demo bench fuzz fuzz-smoke format clean

all: build

deps:
	@scripts/install-deps

build: deps
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

# ASan/UBSan build of everything (the test suite runs here).
debug: deps
	@cmake -S . -B $(ASAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DBULWARK_SANITIZE=ON $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)

# The whole suite (unit + end-to-end) under ASan/UBSan, then a short run of every fuzz target.
# The end-to-end tests' S3 servers (s3rver from npm, radosgw from Debian), PostgreSQL 15 server
# (Debian's postgresql-15) and ClickHouse server (Debian's clickhouse-server 18.16; all test-only)
# are installed first: instant when present.
test: debug
	@scripts/install-deps --test
	@scripts/s3-server install --object-lock
	@scripts/pg-server install
	@scripts/ch-server install
	@cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --output-on-failure -j $(JOBS) --timeout 900
	@$(MAKE) --no-print-directory fuzz-smoke

fuzz: deps
	@CXX=clang++ cmake -S . -B $(FUZZ_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DBULWARK_FUZZ=ON -DBULWARK_TESTS=OFF $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(FUZZ_BUILD) -j $(JOBS)

fuzz-smoke: fuzz
	@scripts/fuzz-smoke $(FUZZ_BUILD)

demo: build
	@scripts/demo $(BUILD)/bulwark $(BUILD)/bulwark-treecmp

bench:
	@scripts/install-deps --bench
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release -DBULWARK_BENCH=ON $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)
	@bench/run $(BUILD)/bulwark
	@bench/prune-run $(BUILD)/bulwark
	@bench/s3-run $(BUILD)/bulwark
	@bench/pg-run $(BUILD)/bulwark
	@bench/ch-run $(BUILD)/bulwark

format:
	@clang-format -i $$(git ls-files '*.cc' '*.h')

clean:
	@rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
