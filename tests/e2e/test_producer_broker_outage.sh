#!/usr/bin/env bash
# e2e: crmsync-prospect-producer through a broker outage, and a crash during it.
#
# A private single-node broker on port 29092 (deploy/kafka/kafka.sh, its own data directory;
# the shared broker on 19092 is not touched), the sandbox, and the producer. The broker stops;
# prospects are created; the producer keeps running and /healthz turns 503 while its events
# wait; then the producer is SIGKILLed (its unacknowledged events are lost with it), the broker
# comes back and a new producer starts from the durable cursor. Prospects created before,
# during and after the outage must all reach the topic, without a re-flood of the ones
# published before it; SIGTERM then exits 0. Everything started here is stopped on exit,
# whatever happens (trap).
set -euo pipefail

REPO=${CRMSYNC_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
BIN=${CRMSYNC_BIN_DIR:-$REPO/build/bin}
PORT=29092
BOOT=127.0.0.1:$PORT
KSH=$REPO/deploy/kafka/kafka.sh
WORK=$(mktemp -d /tmp/crmsync-outage-XXXXXX)
PREFIX=crmsync.test.outage.$$.$(date +%s%3N)
# crmsync programs read CRMSYNC_KAFKA_* as kafka.* (environment beats the config file): the
# test runner's points at the shared broker, this test uses its own
unset CRMSYNC_KAFKA_BOOTSTRAP_SERVERS
export CRMSYNC_BROKER_PORT=$PORT

sb_pid= prod_pid= started_broker=0 fails=0
cleanup() {
    [[ -n $prod_pid ]] && kill -KILL "$prod_pid" 2>/dev/null || true
    [[ -n $sb_pid ]] && kill -TERM "$sb_pid" 2>/dev/null || true
    ((started_broker)) && "$KSH" stop >/dev/null 2>&1 || true
    wait 2>/dev/null || true
}
trap cleanup EXIT

say() { echo "outage: $*"; }
check() { # description, command...
    local what=$1
    shift
    if "$@"; then
        say "ok: $what"
    else
        say "FAILED: $what"
        fails=$((fails + 1))
    fi
}

if ! command -v kcat >/dev/null || ! command -v curl >/dev/null; then
    say "kcat and curl are required (tools/install-deps.sh)"
    exit 1
fi
if "$KSH" status >/dev/null 2>&1; then
    say "a broker already runs on $PORT (not ours): refusing to stop it"
    exit 1
fi
started_broker=1
"$KSH" start >"$WORK/broker-start.log" 2>&1 || { cat "$WORK/broker-start.log"; exit 1; }

# topics: the producer needs topic.prospect, topic.errors and topic.cursors
cat >"$WORK/topics.conf" <<CONF
kafka.bootstrap.servers=$BOOT
topic.prospect=$PREFIX.prospect
topic.activity=$PREFIX.activity
topic.crm=$PREFIX.crm
topic.control=$PREFIX.control
topic.state=$PREFIX.state
topic.errors=$PREFIX.errors
topic.cursors=$PREFIX.cursors
topics.partitions=3
CONF
"$BIN/crmsync-admin" --config "$WORK/topics.conf" topics create >"$WORK/admin.log" 2>&1

# the sandbox
"$BIN/crmsync-sandbox" --port 0 >"$WORK/sandbox.out" 2>"$WORK/sandbox.log" &
sb_pid=$!
for _ in $(seq 100); do
    SB=$(sed -n 's/^listening on //p' "$WORK/sandbox.out")
    [[ -n $SB ]] && break
    sleep 0.1
done
[[ -n $SB ]] || { say "sandbox did not start"; exit 1; }
TOKEN=$(curl -sf -X POST "$SB/services/oauth2/token" -d grant_type=client_credentials \
    -d client_id=crmsync-sandbox-client -d client_secret=sandbox-secret |
    sed -n 's/.*"access_token" *: *"\([^"]*\)".*/\1/p')
create() { # email
    curl -sf -X POST "$SB/api/v5/objects/prospects?fields=id" -H "Authorization: Bearer $TOKEN" \
        -H "Pardot-Business-Unit-Id: 0Uv5g000000SBOXCA4" -H 'Content-Type: application/json' \
        -d "{\"email\": \"$1\"}" >/dev/null
}

# the producer
cp "$WORK/topics.conf" "$WORK/producer.conf"
cat >>"$WORK/producer.conf" <<CONF
crm.login_url=$SB
crm.client_id=crmsync-sandbox-client
crm.client_secret=sandbox-secret
mkt.base_url=$SB
mkt.business_unit_id=0Uv5g000000SBOXCA4
poll.interval.ms=200
http.port=0
shutdown.timeout.ms=10000
retry.backoff.max.ms=1000
CONF
for i in $(seq 1 10); do create "before$i@example.com"; done
"$BIN/crmsync-prospect-producer" --config "$WORK/producer.conf" >"$WORK/producer.log" 2>&1 &
prod_pid=$!

count() { # distinct keys in the prospect topic
    kcat -b "$BOOT" -C -t "$PREFIX.prospect" -e -q -f '%k\n' 2>/dev/null | sort -u | grep -c . || true
}
total() {
    kcat -b "$BOOT" -C -t "$PREFIX.prospect" -e -q -f '%k\n' 2>/dev/null | grep -c . || true
}
wait_count() { # n timeout_s
    local end=$((SECONDS + $2))
    while ((SECONDS < end)); do
        (($(count) >= $1)) && return 0
        sleep 0.5
    done
    return 1
}
check "10 prospects published before the outage" wait_count 10 30
# one more change 3 s later moves the cursor so that the first 10 are outside the overlap
# window (2 s): from here on, publishing them again would be a re-flood
sleep 3
create "marker@example.com"
check "the marker published" wait_count 11 30
sleep 1 # the cursor is written behind it

# the outage
"$KSH" stop >"$WORK/broker-stop.log" 2>&1
say "broker stopped"
for i in $(seq 1 10); do create "during$i@example.com"; done
PORT_HTTP=$(sed -n 's/.*metrics on http:\/\/127.0.0.1:\([0-9]*\)\/metrics.*/\1/p' "$WORK/producer.log" | head -1)
healthz() { curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT_HTTP/healthz"; }
unhealthy_within() { # seconds: /healthz turns 503 while deliveries wait for the broker
    local end=$((SECONDS + $1))
    while ((SECONDS < end)); do
        [[ $(healthz) = 503 ]] && return 0
        sleep 1
    done
    return 1
}
check "/healthz says 503 while the broker does not acknowledge" unhealthy_within 50
check "the producer keeps running while the broker is down" kill -0 "$prod_pid"
check "/metrics answers during the outage" curl -sf "http://127.0.0.1:$PORT_HTTP/metrics" -o /dev/null
# a crash during the outage: whatever waited in the producer's memory is gone; the durable
# cursor is still the one from before the outage, so the next process publishes it again
kill -KILL "$prod_pid"
wait "$prod_pid" 2>/dev/null || true
prod_pid=
"$KSH" start >"$WORK/broker-restart.log" 2>&1 || { cat "$WORK/broker-restart.log"; exit 1; }
say "broker restarted"
"$BIN/crmsync-prospect-producer" --config "$WORK/producer.conf" >"$WORK/producer2.log" 2>&1 &
prod_pid=$!
for i in $(seq 1 5); do create "after$i@example.com"; done
for _ in $(seq 100); do
    PORT_HTTP=$(sed -n 's/.*metrics on http:\/\/127.0.0.1:\([0-9]*\)\/metrics.*/\1/p' "$WORK/producer2.log" | head -1)
    [[ -n $PORT_HTTP ]] && break
    sleep 0.1
done

check "all 26 prospects published after the outage" wait_count 26 120
sleep 2
n=$(total)
say "$n events for 26 prospects"
before_dups=$(kcat -b "$BOOT" -C -t "$PREFIX.prospect" -e -q -f '%k\n' 2>/dev/null |
    grep '^before' | sort | uniq -d | grep -c . || true)
check "no re-flood: each prospect published before the outage exactly once" test "$before_dups" -eq 0
check "nothing lost and no more than the during-outage ones twice ($n events)" test "$n" -le 36
check "/healthz is 200 again" curl -sf "http://127.0.0.1:$PORT_HTTP/healthz" -o /dev/null

kill -TERM "$prod_pid"
rc=0
wait "$prod_pid" || rc=$?
prod_pid=
check "SIGTERM exits 0 after a clean drain (rc $rc)" test "$rc" -eq 0
check "the producer logged a clean stop" grep -q "stopped cleanly" "$WORK/producer2.log"

if ((fails)); then
    say "$fails check(s) failed; logs in $WORK"
    exit 1
fi
say "all checks passed"
rm -rf "$WORK"
