#!/usr/bin/env bash
# Runs the test tiers: tools/test.sh unit|component|e2e|all
#
# unit runs with no broker. component and e2e need the real local Kafka broker: this script
# starts one (deploy/kafka/kafka.sh) for the whole run, creates the topics, runs the tiers
# and stops the broker on exit, whatever the outcome (trap), so `make test` leaves no
# process running. Set CRMSYNC_BOOTSTRAP to use a broker you started yourself (it is then
# left alone).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-build}
[[ $BUILD = /* ]] || BUILD=$REPO/$BUILD
tier=${1:-all}
cd "$REPO"

ctest_tier() {
    echo "== tier: $1"
    ctest --test-dir "$BUILD" -L "^$1\$" --output-on-failure --no-tests=error -j1
}

started_broker=0
stop_broker() {
    if ((started_broker)); then
        deploy/kafka/kafka.sh stop || true
    fi
}
trap stop_broker EXIT

need_broker() {
    if [[ -n ${CRMSYNC_BOOTSTRAP:-} ]]; then
        echo "== using the broker at $CRMSYNC_BOOTSTRAP"
    else
        started_broker=1
        deploy/kafka/kafka.sh start
        CRMSYNC_BOOTSTRAP=$(deploy/kafka/kafka.sh bootstrap)
        export CRMSYNC_BOOTSTRAP
    fi
    # Tests read CRMSYNC_BOOTSTRAP and hand it to the programs they start; it is not exported
    # as CRMSYNC_KAFKA_BOOTSTRAP_SERVERS, which would override their own configurations.
    "$BUILD/bin/crmsync-admin" --set "kafka.bootstrap.servers=$CRMSYNC_BOOTSTRAP" topics create
}

rc=0
case $tier in
    unit) ctest_tier unit || rc=$? ;;
    component | e2e)
        need_broker
        ctest_tier "$tier" || rc=$?
        ;;
    all)
        ctest_tier unit || rc=$?
        need_broker
        ctest_tier component || rc=$?
        ctest_tier e2e || rc=$?
        ;;
    *)
        echo "usage: tools/test.sh unit|component|e2e|all" >&2
        exit 2
        ;;
esac
if ((rc)); then
    echo "== FAILED (some tier failed; see above)"
else
    echo "== all requested tiers passed"
fi
exit "$rc"
