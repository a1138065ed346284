# crmsync: the two commands of the quick start, and the steps behind them.
#   make demo   install, build, start the local broker and sandbox, run the pipeline, show it
#   make test   install, build, start what the tests need, run every test tier, stop it all
# Everything installs itself (tools/install-deps.sh); caches live in .cache/ (outside git).

BUILD ?= build
JOBS ?= 2
CMAKE_FLAGS ?=

.PHONY: all deps build test test-unit test-component test-e2e demo bench clean format broker-start broker-stop broker-status sanitize

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

# AddressSanitizer + UndefinedBehaviorSanitizer build of every tier.
sanitize:
	@$(MAKE) test BUILD=build-asan CMAKE_FLAGS=-DCRMSYNC_SANITIZE=ON

broker-start: deps
	@deploy/kafka/kafka.sh start
broker-stop:
	@deploy/kafka/kafka.sh stop
broker-status:
	@deploy/kafka/kafka.sh status

format:
	@clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) build-asan
