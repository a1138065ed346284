#!/usr/bin/env bash
# Runs the end-to-end benchmark: tools/bench.sh [crmsync-bench options]   (make bench)
#
# Needs what `make build` produced ($BUILD/bin: crmsync-bench, crmsync-sync-consumer,
# crmsync-sandbox); installs nothing. Starts the local broker (deploy/kafka/kafka.sh) unless
# one is already running or CRMSYNC_BOOTSTRAP names another, and stops it on exit only if it
# started it. crmsync-bench creates its own topics (crmsync-bench.<pid>.*), starts the
# sandbox and the sync consumers as its children, and deletes the topics at the end, so
# nothing is left running. See docs/PERFORMANCE.md.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-build}
[[ $BUILD = /* ]] || BUILD=$REPO/$BUILD
cd "$REPO"

bin=$BUILD/bin/crmsync-bench
for p in crmsync-bench crmsync-sync-consumer crmsync-sandbox; do
    if [[ ! -x $BUILD/bin/$p ]]; then
        echo "bench: $BUILD/bin/$p is missing: run make build (or make bench) first" >&2
        exit 2
    fi
done

started_broker=0
cleanup() {
    if ((started_broker)); then
        deploy/kafka/kafka.sh stop >/dev/null || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ -n ${CRMSYNC_BOOTSTRAP:-} ]]; then
    echo "== using the broker at $CRMSYNC_BOOTSTRAP"
elif deploy/kafka/kafka.sh status >/dev/null 2>&1; then
    CRMSYNC_BOOTSTRAP=$(deploy/kafka/kafka.sh bootstrap)
    echo "== using the running local broker at $CRMSYNC_BOOTSTRAP"
else
    started_broker=1
    deploy/kafka/kafka.sh start
    CRMSYNC_BOOTSTRAP=$(deploy/kafka/kafka.sh bootstrap)
fi
export CRMSYNC_BOOTSTRAP
# the programs crmsync-bench starts are the ones of this build
export CRMSYNC_BIN_DIR=$BUILD/bin

# Not exec: the trap above must run after the benchmark to stop a broker we started.
"$bin" --bootstrap "$CRMSYNC_BOOTSTRAP" "$@"
