#!/usr/bin/env bash
# make chaos: the whole pipeline under faults, checked against what the workload wrote.
#
#   tools/chaos.sh [--large | --short] [crmsync-chaos options...]
#
# Uses the broker at CRMSYNC_BOOTSTRAP, else the local one (deploy/kafka/kafka.sh), started
# here if it is not running and then stopped at the end (only then), as tools/test.sh does.
# Runs build/bin/crmsync-chaos (BUILD: the build directory): its own sandbox, the three
# producers and three sync-consumer replicas on fresh topics and a fresh consumer group; a
# workload of >= 100,000 input events (>= 1,000,000 with --large) while a random replica is
# SIGKILLed every few seconds, the broker is stopped and started once, the sandbox answers
# 10 % of the calls with 503, refuses bursts as rate-limited and expires tokens every 5 s,
# and poison records land on every input topic. Then the faults are lifted, the pipeline
# goes quiet, and the records are checked. The last line of the output is
#   CHAOS events=N lost=0 duplicate_leads=0 mismatched=0 poison_routed=N kills=N
# Logs, configs and findings.txt: .cache/chaos/<run>/ (CRMSYNC_CHAOS_DIR instead of
# .cache/chaos). Exit status: crmsync-chaos's (0 = every check passed), 2 usage.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-build}
[[ $BUILD = /* ]] || BUILD=$REPO/$BUILD
KAFKA_SH=$REPO/deploy/kafka/kafka.sh
DIR=${CRMSYNC_CHAOS_DIR:-$REPO/.cache/chaos}

usage() {
    cat <<'EOF'
usage: tools/chaos.sh [--large | --short] [crmsync-chaos options...]
  --large   1,000,000 events or more (12,000 prospects, 900,000 activities, ten minutes of chaos)
  --short   the e2e tier's short run (a few minutes, no minimum event count)
  other arguments go to crmsync-chaos (e.g. --chaos.seed 7, --chaos.kill_interval_ms 3000;
  crmsync-chaos --help lists them)
Environment: BUILD (build directory, default build), CRMSYNC_BOOTSTRAP (use this broker; it
is restarted once only when deploy/kafka/kafka.sh manages it), CRMSYNC_BROKER_PORT (port of
the local broker, default 19092), CRMSYNC_CHAOS_DIR (where run directories go).
EOF
}

args=()
while (($#)); do
    case $1 in
        --large) args+=(--chaos.size large) ;;
        --short) args+=(--chaos.size short) ;;
        -h | --help)
            usage
            exit 0
            ;;
        *) args+=("$1") ;;
    esac
    shift
done

say() { echo "chaos.sh: $*" >&2; }
[[ -x $BUILD/bin/crmsync-chaos ]] || {
    say "$BUILD/bin/crmsync-chaos is missing: run 'make build BUILD=$BUILD' first"
    exit 2
}

mkdir -p "$DIR"
started_broker=0
stop_broker() {
    if ((started_broker)); then
        # after the CHAOS line, which stays the last line of the output
        "$KAFKA_SH" stop >>"$DIR/broker-stop.log" 2>&1 || say "kafka.sh stop failed (see $DIR/broker-stop.log)"
    fi
}
trap stop_broker EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ -n ${CRMSYNC_BOOTSTRAP:-} ]]; then
    say "using the broker at $CRMSYNC_BOOTSTRAP"
elif "$KAFKA_SH" status >/dev/null 2>&1; then
    CRMSYNC_BOOTSTRAP=$("$KAFKA_SH" bootstrap)
    say "using the running local broker at $CRMSYNC_BOOTSTRAP"
else
    started_broker=1
    "$KAFKA_SH" start >&2
    CRMSYNC_BOOTSTRAP=$("$KAFKA_SH" bootstrap)
fi
export CRMSYNC_BOOTSTRAP
# the run restarts the broker through kafka.sh, with this environment (cache and port)
export CRMSYNC_SOURCE_DIR=$REPO
export CRMSYNC_BIN_DIR=$BUILD/bin

set +e
"$BUILD/bin/crmsync-chaos" --chaos.dir "$DIR" --chaos.kafka_sh "$KAFKA_SH" "${args[@]}"
rc=$?
set -e
exit "$rc"
