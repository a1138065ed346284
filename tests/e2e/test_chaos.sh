#!/usr/bin/env bash
# e2e: the short chaos run (`make chaos` in small). crmsync-chaos --chaos.size short against
# the test broker (CRMSYNC_BOOTSTRAP, set by tools/test.sh), which it stops and starts again
# once through deploy/kafka/kafka.sh: 300 prospects through every producer and three
# sync-consumer replicas while replicas are SIGKILLed every few seconds, the sandbox answers
# 10 % of the calls with 503, refuses rate-limit bursts and expires tokens, and poison records
# land on every input topic. Checks that it exits 0 and that its last line is the CHAOS line
# with lost=0 duplicate_leads=0 mismatched=0, poison_routed > 0 and kills > 0. On failure the
# run directory (logs, findings.txt) is kept and its path printed.
set -uo pipefail

SRC=${CRMSYNC_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
BIN_DIR=${CRMSYNC_BIN_DIR:-$SRC/build/bin}
LIMIT=${CRMSYNC_CHAOS_TEST_TIMEOUT:-780} # seconds; the short run takes two to four minutes
RE='^CHAOS events=([0-9]+) lost=([0-9]+) duplicate_leads=([0-9]+) mismatched=([0-9]+) poison_routed=([0-9]+) kills=([0-9]+)$'

TMP=$(mktemp -d "${TMPDIR:-/tmp}/crmsync-chaos-test.XXXXXX")
failures=()
fail() {
    failures+=("$*")
    echo "FAIL: $*"
}

export CRMSYNC_SOURCE_DIR=$SRC CRMSYNC_BIN_DIR=$BIN_DIR
echo "--- crmsync-chaos --chaos.size short (broker ${CRMSYNC_BOOTSTRAP:-127.0.0.1:19092})"
start=$SECONDS
timeout -k 30 "$LIMIT" "$BIN_DIR/crmsync-chaos" --chaos.size short --chaos.dir "$TMP" \
    --chaos.kafka_sh "$SRC/deploy/kafka/kafka.sh" >"$TMP/stdout" 2>"$TMP/stderr"
rc=$?
echo "exit status $rc after $((SECONDS - start)) s"
grep -v '^chaos: t=' "$TMP/stdout" | tail -n 40

if ((rc == 124)); then
    fail "crmsync-chaos did not finish within ${LIMIT}s (killed)"
elif grep -q 'Sanitizer' "$TMP/stderr"; then
    fail "crmsync-chaos (exit $rc) reported a sanitizer finding (leak or memory error): see its stderr"
elif ((rc != 0)); then
    fail "crmsync-chaos exited with $rc (1: a check failed, see above; 3: set-up failed)"
fi
last=$(tail -n 1 "$TMP/stdout")
if [[ $last =~ $RE ]]; then
    ((BASH_REMATCH[2] == 0)) || fail "lost=${BASH_REMATCH[2]}"
    ((BASH_REMATCH[3] == 0)) || fail "duplicate_leads=${BASH_REMATCH[3]}"
    ((BASH_REMATCH[4] == 0)) || fail "mismatched=${BASH_REMATCH[4]}"
    ((BASH_REMATCH[5] > 0)) || fail "poison_routed=${BASH_REMATCH[5]}: no poison record routed"
    ((BASH_REMATCH[6] > 0)) || fail "kills=${BASH_REMATCH[6]}: no replica was killed"
else
    fail "last line is not the CHAOS line: '$last'"
fi
grep -q '^chaos: broker: back after' "$TMP/stdout" ||
    echo "note: the broker was not restarted (see the 'broker:' lines above)"

if ((${#failures[@]})); then
    echo "--- stderr"
    tail -n 20 "$TMP/stderr"
    echo "(run directory and logs kept in $TMP)"
    echo "0 passed, 1 failed"
    exit 1
fi
rm -rf "$TMP"
echo "1 passed, 0 failed"
exit 0
