# crmsync: the two commands of the quick start, and the steps behind them.
#   make demo   install, build, start the local broker and sandbox, run the pipeline, show it
#   make test   install, build, start what the tests need, run every test tier, stop it all
# Everything installs itself (tools/install-deps.sh); caches live in .cache/ (outside git).

BUILD ?= build
JOBS ?= 2
CMAKE_FLAGS ?=

.PHONY: all deps build test test-unit test-component test-e2e demo bench clean format broker-start broker-stop broker-status sanitize sanitize-test e2e-leakcheck fuzz

all: build

deps:
	@tools/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

# Every tier: unit (no broker), then component and e2e against one broker started for the
# whole run and stopped at the end, also when a test fails.
test: build
	@BUILD=$(BUILD) tools/test.sh all

test-unit: build
	@BUILD=$(BUILD) tools/test.sh unit

test-component: build
	@BUILD=$(BUILD) tools/test.sh component

test-e2e: build
	@BUILD=$(BUILD) tools/test.sh e2e

demo: build
	@BUILD=$(BUILD) tools/demo.sh $(DEMO_ARGS)

bench: build
	@BUILD=$(BUILD) tools/bench.sh $(BENCH_ARGS)

# The pipeline under faults (replica kills, a broker restart, 503s, rate limits, expiring
# tokens, poison records), checked against the workload; CHAOS_ARGS=--large for 1M events.
.PHONY: chaos
chaos: build
	@BUILD=$(BUILD) tools/chaos.sh $(CHAOS_ARGS)

# AddressSanitizer + UndefinedBehaviorSanitizer build of every tier.
sanitize:
	@$(MAKE) test BUILD=build-asan CMAKE_FLAGS=-DCRMSYNC_SANITIZE=ON

# The sanitizer runtime options: any UBSan finding fails like an ASan one, leaks fail at
# exit (narrow library suppressions in tests/lsan.supp).
SAN_ENV = ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:detect_stack_use_after_return=0 \
	LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0 \
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

# CI after `make test` (.ci/run): the unit and component tiers built with ASan + UBSan
# (build-asan), leak checking on.
sanitize-test:
	@$(MAKE) build BUILD=build-asan CMAKE_FLAGS=-DCRMSYNC_SANITIZE=ON
	@rc=0; \
	$(SAN_ENV) BUILD=build-asan tools/test.sh unit || rc=1; \
	$(SAN_ENV) BUILD=build-asan tools/test.sh component || rc=1; \
	exit $$rc

# The e2e tier on the same build under LeakSanitizer: every process it starts must exit
# without a leak (or a memory error).
e2e-leakcheck:
	@$(MAKE) build BUILD=build-asan CMAKE_FLAGS=-DCRMSYNC_SANITIZE=ON
	@$(SAN_ENV) BUILD=build-asan tools/test.sh e2e

# libFuzzer targets (tests/fuzz/, clang-14 installed on demand) in build-fuzz, each run for
# FUZZ_SECONDS (default 60); fails on any crash. `make fuzz FUZZ_TARGETS="avro csv"`.
fuzz:
	@BUILD=build-fuzz tools/fuzz.sh $(FUZZ_TARGETS)

broker-start: deps
	@deploy/kafka/kafka.sh start
broker-stop:
	@deploy/kafka/kafka.sh stop
broker-status:
	@deploy/kafka/kafka.sh status

format:
	@clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) build-asan build-fuzz
