#!/usr/bin/env bash
# e2e: secrets never leave the process.
#
# Every program is started with distinctive fake secrets, set through a config file, the
# environment and --set: the CRM client secret and password (client_credentials and password
# grants), the sandbox's own credentials, the activity producer's ingest token and HMAC
# secret, and kafka.sasl.password. They are then used: successful token fetches against the
# sandbox, failed logins (wrong secret, wrong password), ingest requests with a wrong token
# and a wrong signature (and right ones), a Kafka SASL login against the plaintext broker,
# mistyped secret keys (error messages), --dump-config, --check-config and /metrics. Every
# log, every captured stdout/stderr, every /metrics body and every HTTP answer is then
# searched for every secret (and for the sandbox's access tokens, which contain "!AR8AQ");
# any hit fails the test with the file and line.
#
# Needs the shared broker (CRMSYNC_BOOTSTRAP, set by tools/test.sh); its own topics
# (unique prefix). Everything started here is stopped on exit (trap).
set -euo pipefail

REPO=${CRMSYNC_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
BIN=${CRMSYNC_BIN_DIR:-$REPO/build/bin}
BOOT=${CRMSYNC_BOOTSTRAP:-127.0.0.1:19092}
WORK=$(mktemp -d /tmp/crmsync-secrets-XXXXXX)
IN=$WORK/in   # config files: they hold the secrets, never searched
OUT=$WORK/out # everything a program said: searched
mkdir -p "$IN" "$OUT"
PREFIX=crmsync.test.secrets.$$.$(date +%s%3N)
unset CRMSYNC_KAFKA_BOOTSTRAP_SERVERS # set per program below

# The secrets: distinctive, none a substring of another or of anything a program prints.
SBX_SECRET=Zq7sbxClientSecret41    # sandbox auth.client_secret = the right crm.client_secret
SBX_PW=Zq7sbxPassword52            # sandbox auth.password
SBX_STOK=Zq7sbxSecTok63            # sandbox auth.security_token (appended to the password)
BAD_SECRET=Zq7wrongClientSecret74  # a wrong crm.client_secret (failed login)
BAD_PW=Zq7wrongPassword85          # a wrong crm.password (failed login)
ING_TOKEN=Zq7ingestBearerTok96     # activity producer ingest.token
ING_HMAC=Zq7ingestHmacKey07        # activity producer ingest.hmac_secret
KAFKA_PW_FILE=Zq7kafkaPwFile18     # kafka.sasl.password from a config file
KAFKA_PW_ENV=Zq7kafkaPwEnv29       # ... from CRMSYNC_KAFKA_SASL_PASSWORD
KAFKA_PW_SET=Zq7kafkaPwSet30       # ... from --set
TYPO_SECRET=Zq7typoKeySecret31     # the value of a mistyped secret key
SECRETS=("$SBX_SECRET" "$SBX_PW" "$SBX_STOK" "$BAD_SECRET" "$BAD_PW" "$ING_TOKEN" "$ING_HMAC"
         "$KAFKA_PW_FILE" "$KAFKA_PW_ENV" "$KAFKA_PW_SET" "$TYPO_SECRET")

pids=()
fails=0
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    if ((fails == 0)) && [[ -z ${KEEP_WORK:-} ]]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT

say() { echo "secrets: $*"; }
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

# Waits for "listening on HOST:PORT" (cs_httpd) or "listening on URL" in a file; prints the
# base URL.
wait_listen() { # file, timeout s
    local f=$1 url=
    for _ in $(seq $((${2:-15} * 10))); do
        url=$(sed -n 's/.*listening on \(http:\/\/[^ ]*\).*/\1/p; s/.*listening on \([0-9.]*:[0-9]*\).*/http:\/\/\1/p' "$f" 2>/dev/null | head -n1)
        [[ -n $url ]] && { echo "$url"; return 0; }
        sleep 0.1
    done
    return 1
}

start() { # name, log, args... (environment from the caller); sets $last_pid
    local name=$1 log=$2
    shift 2
    "$BIN/crmsync-$name" "$@" >"$log" 2>&1 &
    last_pid=$!
    pids+=("$last_pid")
}

stop() { # pid: SIGTERM, wait up to 20 s
    local p=$1
    kill -TERM "$p" 2>/dev/null || return 0
    for _ in $(seq 200); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
}

metrics() { # base url, out file
    curl -sS --max-time 5 "$1/metrics" >"$2" 2>&1 || true
}

# ---------------------------------------------------------------- topics and the sandbox

cat >"$IN/topics.conf" <<CONF
kafka.bootstrap.servers=$BOOT
topic.prospect=$PREFIX.prospect
topic.activity=$PREFIX.activity
topic.crm=$PREFIX.crm
topic.control=$PREFIX.control
topic.state=$PREFIX.state
topic.errors=$PREFIX.errors
topic.cursors=$PREFIX.cursors
topics.partitions=2
CONF
"$BIN/crmsync-admin" --config "$IN/topics.conf" topics create >"$OUT/admin-topics.log" 2>&1 ||
    { say "topics create failed"; cat "$OUT/admin-topics.log"; exit 1; }

cat >"$IN/sandbox.conf" <<CONF
auth.client_secret=$SBX_SECRET
auth.password=$SBX_PW
CONF
# the security token through the environment, log level from --set
CRMSYNC_AUTH_SECURITY_TOKEN=$SBX_STOK \
    "$BIN/crmsync-sandbox" --config "$IN/sandbox.conf" --set log.level=debug --port 0 \
    >"$OUT/sandbox.out" 2>"$OUT/sandbox.log" &
sb_pid=$!
pids+=("$sb_pid")
SB=$(wait_listen "$OUT/sandbox.out") || { say "sandbox did not start"; cat "$OUT/sandbox.log"; exit 1; }
say "sandbox at $SB"
CRMSYNC_AUTH_SECURITY_TOKEN=$SBX_STOK "$BIN/crmsync-sandbox" --config "$IN/sandbox.conf" \
    --dump-config >"$OUT/sandbox.dump" 2>&1 || true

# A prospect, so that the producers have something to poll and the API calls happen.
tok=$(curl -sS --max-time 5 -d grant_type=client_credentials -d client_id=crmsync-sandbox-client \
    --data-urlencode "client_secret=$SBX_SECRET" "$SB/services/oauth2/token" |
    sed -n 's/.*"access_token" *: *"\([^"]*\)".*/\1/p')
check "the sandbox accepts its configured client secret" test -n "$tok"
curl -sS --max-time 5 -o /dev/null -H "Authorization: Bearer $tok" \
    -H "Pardot-Business-Unit-Id: 0Uv5g000000SBOXCA4" -H 'Content-Type: application/json' \
    -d '{"email":"secret.test@example.com","firstName":"Sec"}' "$SB/api/v5/objects/prospects" || true
curl -sS --max-time 5 -o /dev/null -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' \
    -d '{"LastName":"Lead","Company":"Acme","Email":"lead.secret@example.com"}' \
    "$SB/services/data/v60.0/sobjects/Lead" || true
unset tok

# ---------------------------------------------------------------- common API settings

api_conf() { # file, extra lines...
    local f=$1
    shift
    {
        cat "$IN/topics.conf"
        echo "crm.login_url=$SB"
        echo "crm.client_id=crmsync-sandbox-client"
        echo "mkt.base_url=$SB"
        echo "mkt.business_unit_id=0Uv5g000000SBOXCA4"
        echo "log.level=debug"
        echo "http.port=0"
        printf '%s\n' "$@"
    } >"$f"
}

# ---------------------------------------------------------------- producers: logins

# crm-producer, client_credentials, the right secret from --set, Kafka password from the file
api_conf "$IN/crm-ok.conf" "poll.interval.ms=300" "kafka.sasl.password=$KAFKA_PW_FILE"
start crm-producer "$OUT/crm-ok.log" --config "$IN/crm-ok.conf" --set "crm.client_secret=$SBX_SECRET"
crm_ok=$last_pid
# crm-producer, password grant, a wrong password from the file (failed login)
api_conf "$IN/crm-badpw.conf" "poll.interval.ms=300" "crm.grant_type=password" \
    "crm.username=integration@crmsync.example" "crm.password=$BAD_PW" \
    "crm.client_secret=$SBX_SECRET"
start crm-producer "$OUT/crm-badpw.log" --config "$IN/crm-badpw.conf"
crm_bad=$last_pid
# prospect-producer, password grant, the right password + security token and the secret
# from the environment, Kafka password from the environment
api_conf "$IN/prospect-ok.conf" "poll.interval.ms=300" "crm.grant_type=password" \
    "crm.username=integration@crmsync.example"
CRMSYNC_CRM_PASSWORD=$SBX_PW$SBX_STOK CRMSYNC_CRM_CLIENT_SECRET=$SBX_SECRET \
    CRMSYNC_KAFKA_SASL_PASSWORD=$KAFKA_PW_ENV \
    start prospect-producer "$OUT/prospect-ok.log" --config "$IN/prospect-ok.conf"
pr_ok=$last_pid
# prospect-producer, a wrong client secret from the environment (failed login)
api_conf "$IN/prospect-bad.conf" "poll.interval.ms=300"
CRMSYNC_CRM_CLIENT_SECRET=$BAD_SECRET \
    start prospect-producer "$OUT/prospect-bad.log" --config "$IN/prospect-bad.conf" \
    --set "kafka.sasl.password=$KAFKA_PW_SET"
pr_bad=$last_pid

# sync consumer: every secret at once, from all three places
api_conf "$IN/sync.conf" "crm.client_secret=$SBX_SECRET" "group.id=$PREFIX.group" \
    "kafka.sasl.password=$KAFKA_PW_FILE"
CRMSYNC_CRM_PASSWORD=$BAD_PW CRMSYNC_KAFKA_SASL_PASSWORD=$KAFKA_PW_ENV \
    start sync-consumer "$OUT/sync.log" --config "$IN/sync.conf" --set "crm.client_secret=$SBX_SECRET"
sync_pid=$last_pid

# ---------------------------------------------------------------- activity producer: ingest

api_conf "$IN/activity.conf" "ingest.token=$ING_TOKEN" "kafka.sasl.password=$KAFKA_PW_FILE"
CRMSYNC_INGEST_HMAC_SECRET=$ING_HMAC \
    start activity-producer "$OUT/activity.log" --config "$IN/activity.conf"
act_pid=$last_pid
ACT=$(wait_listen "$OUT/activity.log" 20) || { say "activity producer did not start"; cat "$OUT/activity.log"; exit 1; }
BODY='{"id":"sec-1","type":"form","email":"secret.test@example.com"}'
post() { # name, extra curl args...
    local name=$1
    shift
    curl -sS --max-time 15 -o "$OUT/ingest-$name.body" -D "$OUT/ingest-$name.headers" \
        -w '%{http_code}' -H 'Content-Type: application/json' "$@" "$ACT/v1/activities" 2>&1 || true
}
check "no credentials: 401" test "$(post none -d "$BODY")" = 401
check "a wrong bearer token: 401" \
    test "$(post badtoken -H "Authorization: Bearer not-$ING_TOKEN-x" -d "$BODY")" = 401
badsig=$(printf '%s' "$BODY" | openssl dgst -sha256 -hmac "not-$ING_HMAC" | sed 's/^.*= //')
check "a wrong signature: 401" \
    test "$(post badsig -H "X-Crmsync-Signature: sha256=$badsig" -d "$BODY")" = 401
code=$(post token -H "Authorization: Bearer $ING_TOKEN" -d "$BODY")
check "the right token: 2xx (got $code)" test "${code:0:1}" = 2
BODY2='{"id":"sec-2","type":"page_view","email":"secret.test@example.com"}'
sig=$(printf '%s' "$BODY2" | openssl dgst -sha256 -hmac "$ING_HMAC" | sed 's/^.*= //')
code=$(post sig -H "X-Crmsync-Signature: sha256=$sig" -d "$BODY2")
check "the right signature: 2xx (got $code)" test "${code:0:1}" = 2

# let the producers poll (token fetches, failed logins, retries)
sleep 4
for pair in "crm-ok:$OUT/crm-ok.log" "crm-badpw:$OUT/crm-badpw.log" "prospect-ok:$OUT/prospect-ok.log" \
    "prospect-bad:$OUT/prospect-bad.log" "sync:$OUT/sync.log" "activity:$OUT/activity.log"; do
    name=${pair%%:*}
    url=$(wait_listen "${pair#*:}" 1 || true)
    [[ -n $url ]] && metrics "$url" "$OUT/metrics-$name.txt"
done
check "a token was fetched with the client secret (crm-producer)" \
    grep -q "access token obtained" "$OUT/crm-ok.log"
check "a token was fetched with the password grant (prospect-producer)" \
    grep -q "access token obtained" "$OUT/prospect-ok.log"
check "the wrong password was refused (crm-producer)" grep -q "token endpoint refused" "$OUT/crm-badpw.log"
check "the wrong client secret was refused (prospect-producer)" \
    grep -q "token endpoint refused" "$OUT/prospect-bad.log"
check "/metrics was read" test -s "$OUT/metrics-activity.txt"
for p in "$crm_ok" "$crm_bad" "$pr_ok" "$pr_bad" "$sync_pid" "$act_pid"; do stop "$p"; done

# ---------------------------------------------------------------- Kafka SASL login

# SASL against the plaintext broker: the login fails; what librdkafka and we say about it
# must not carry the password (debug logging of the security layer on).
timeout 40 "$BIN/crmsync-admin" --config "$IN/topics.conf" --set log.level=debug \
    --set kafka.security.protocol=SASL_PLAINTEXT --set kafka.sasl.mechanisms=PLAIN \
    --set kafka.sasl.username=crmsync --set "kafka.sasl.password=$KAFKA_PW_SET" \
    --set kafka.debug=security,broker,conf topics verify >"$OUT/admin-sasl.log" 2>&1 || true
CRMSYNC_KAFKA_SASL_PASSWORD=$KAFKA_PW_ENV timeout 40 "$BIN/crmsync-admin" --config "$IN/topics.conf" \
    --set kafka.security.protocol=SASL_PLAINTEXT --set kafka.sasl.mechanisms=SCRAM-SHA-256 \
    --set kafka.sasl.username=crmsync --set kafka.debug=security,conf \
    topics verify >"$OUT/admin-scram.log" 2>&1 || true
check "the SASL login was attempted" grep -qi "sasl" "$OUT/admin-sasl.log"

# ---------------------------------------------------------------- config output and errors

# every program: the Kafka password from the file, another Kafka secret from --set, the
# program's own secrets from the environment (a program ignores variables of options it
# does not have)
{ cat "$IN/topics.conf"; echo "kafka.sasl.password=$KAFKA_PW_FILE"; } >"$IN/dump.conf"
for prog in sync-consumer prospect-producer crm-producer activity-producer import admin; do
    for flag in --dump-config --check-config; do
        CRMSYNC_CRM_PASSWORD=$BAD_PW CRMSYNC_CRM_CLIENT_SECRET=$BAD_SECRET \
            CRMSYNC_INGEST_TOKEN=$ING_TOKEN CRMSYNC_INGEST_HMAC_SECRET=$ING_HMAC \
            "$BIN/crmsync-$prog" --config "$IN/dump.conf" --set "kafka.ssl.key.password=$KAFKA_PW_SET" \
            "$flag" >"$OUT/${flag#--}-$prog.txt" 2>&1 || true
    done
done
check "--dump-config redacts crm.client_secret (sync consumer)" \
    grep -q '^crm.client_secret=\*\*\*\*\*\*\*\*$' "$OUT/dump-config-sync-consumer.txt"
check "--dump-config redacts kafka.sasl.password and kafka.ssl.key.password" \
    test "$(grep -c '^kafka.s[a-z.]*password=\*\*\*\*\*\*\*\*$' "$OUT/dump-config-sync-consumer.txt")" = 2
check "--dump-config redacts ingest.token and ingest.hmac_secret (activity producer)" \
    test "$(grep -c '^ingest.[a-z_]*=\*\*\*\*\*\*\*\*$' "$OUT/dump-config-activity-producer.txt")" = 2
check "the sandbox's --dump-config redacts its credentials" \
    test "$(grep -c '^auth.[a-z_]*=\*\*\*\*\*\*\*\*$' "$OUT/sandbox.dump")" = 3

# mistyped secret keys: the error names the key, never the value
"$BIN/crmsync-sync-consumer" --config "$IN/sync.conf" --set "crm.client_secert=$TYPO_SECRET" \
    --check-config >"$OUT/typo-set.txt" 2>&1 || true
"$BIN/crmsync-sync-consumer" --config "$IN/sync.conf" "--crm.client_secert=$TYPO_SECRET" \
    --check-config >"$OUT/typo-flag.txt" 2>&1 || true
printf 'crm.pasword=%s\n' "$TYPO_SECRET" >"$IN/typo.conf"
"$BIN/crmsync-sync-consumer" --config "$IN/typo.conf" --check-config >"$OUT/typo-file.txt" 2>&1 || true
CRMSYNC_CRM_PASSWORD=$TYPO_SECRET "$BIN/crmsync-sync-consumer" --config "$IN/typo.conf" \
    --crm.client_secret "$TYPO_SECRET" --check-config >"$OUT/typo-file2.txt" 2>&1 || true
timeout 30 "$BIN/crmsync-admin" --config "$IN/topics.conf" --set "kafka.sasl.pasword=$TYPO_SECRET" \
    topics verify >"$OUT/typo-kafka.txt" 2>&1 || true
timeout 30 "$BIN/crmsync-admin" --config "$IN/topics.conf" --set "kafka.sasl.password=$TYPO_SECRET" \
    --set "kafka.sasl.mechanisms=NOT-A-MECHANISM" topics verify >"$OUT/bad-kafka-value.txt" 2>&1 || true
check "a mistyped key is an error" grep -qi "unknown" "$OUT/typo-file.txt"

# ---------------------------------------------------------------- the search

stop "$sb_pid"
leaks=0
for s in "${SECRETS[@]}" '!AR8AQ'; do
    if hits=$(grep -rnF -- "$s" "$OUT"); then
        say "LEAK of '$s':"
        printf '%s\n' "$hits" | head -n 5 | sed 's/^/    /'
        leaks=$((leaks + 1))
    fi
done
nfiles=$(find "$OUT" -type f | wc -l)
check "no secret in $nfiles outputs (logs, stdout/stderr, dumps, /metrics, HTTP answers)" test "$leaks" = 0

if ((fails)); then
    say "$fails check(s) failed (work directory kept: $WORK)"
    exit 1
fi
say "all checks passed"
