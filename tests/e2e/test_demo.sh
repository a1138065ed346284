#!/usr/bin/env bash
# e2e: `make demo` in its short mode. Runs tools/demo.sh --short against the test broker
# (CRMSYNC_BOOTSTRAP, set by tools/test.sh; without it demo.sh uses or starts the local one)
# and checks that it exits 0, that its last line is the DEMO line with CRM writes and API
# calls, and that every process it started is gone afterwards (the PIDs it recorded).
set -uo pipefail

SRC=${CRMSYNC_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
BIN_DIR=${CRMSYNC_BIN_DIR:-$SRC/build/bin}
BUILD=$(cd "$BIN_DIR/.." && pwd)
LIMIT=${CRMSYNC_DEMO_TEST_TIMEOUT:-150} # seconds; the short demo takes well under a minute
RE='^DEMO events=[0-9]+ crm_writes=[1-9][0-9]* marketing_writes=[0-9]+ api_calls=[1-9][0-9]* errors=[0-9]+ p99_ms=[0-9]+$'

TMP=$(mktemp -d "${TMPDIR:-/tmp}/crmsync-demo-test.XXXXXX")
failures=()
fail() { failures+=("$*"); echo "FAIL: $*"; }

echo "--- tools/demo.sh --short (BUILD=$BUILD, broker ${CRMSYNC_BOOTSTRAP:-local})"
start=$SECONDS
CRMSYNC_DEMO_DIR=$TMP BUILD=$BUILD timeout -k 30 "$LIMIT" bash "$SRC/tools/demo.sh" --short \
    >"$TMP/stdout" 2>"$TMP/stderr"
rc=$?
echo "exit status $rc after $((SECONDS - start)) s"
tail -n 25 "$TMP/stdout"

# 1. it synced
((rc == 0)) || fail "tools/demo.sh exited with $rc (124: killed after ${LIMIT}s)"

# 2. the last line
last=$(tail -n 1 "$TMP/stdout")
[[ $last =~ $RE ]] || fail "last line is not the DEMO line: '$last'"

# 3. nothing it started is left: every PID it recorded is gone (a zombie waiting for init
#    to reap it counts as gone; the binary is compared so a reused PID is not blamed)
run=$(find "$TMP" -mindepth 1 -maxdepth 1 -type d -name 'demo*' | head -n 1)
if [[ -z $run || ! -s $run/pids ]]; then
    fail "no PID list under $TMP (run dir: ${run:-none})"
else
    n=$(wc -l <"$run/pids")
    ((n >= 6)) || fail "only $n processes recorded in $run/pids (sandbox, 3 producers, 2 replicas)"
    left() { # pid exe
        local st
        st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
        [[ -n $st && $st != Z && $st != X ]] || return 1
        [[ $(readlink "/proc/$1/exe" 2>/dev/null) == "$2" ]]
    }
    deadline=$((SECONDS + 5))
    while :; do
        alive=()
        while read -r pid exe name; do
            left "$pid" "$exe" && alive+=("$name($pid)")
        done <"$run/pids"
        ((${#alive[@]} == 0 || SECONDS >= deadline)) && break
        sleep 0.2
    done
    if ((${#alive[@]})); then
        fail "still running after the demo: ${alive[*]}"
        for a in "${alive[@]}"; do # do not leave them behind either
            pid=${a##*(}
            kill -KILL "${pid%)}" 2>/dev/null
        done
    fi
    [[ -e $run/broker_started ]] && fail "the broker this run started was not stopped"
fi

if ((${#failures[@]})); then
    echo "--- stderr"
    tail -n 30 "$TMP/stderr"
    for f in ${run:+"$run"/*.log}; do
        [[ -f $f ]] || continue
        echo "--- $(basename "$f") (last lines)"
        tail -n 8 "$f"
    done
    echo "(logs kept in $TMP)"
    echo "0 passed, 1 failed"
    exit 1
fi
rm -rf "$TMP"
echo "1 passed, 0 failed"
exit 0
