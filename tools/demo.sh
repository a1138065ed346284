#!/usr/bin/env bash
# make demo: the whole pipeline on this machine, driven by a sample workload and shown live.
#
#   tools/demo.sh [--keep] [--short] [--prospects N]
#
# Starts the local Kafka broker if none is running (CRMSYNC_BOOTSTRAP: use that broker),
# creates a fresh set of topics for this run (prefix demo<epoch>-<pid>., so earlier runs'
# events never replay), starts crmsync-sandbox, the prospect, CRM and activity producers
# (1 s polls; the ingest gets a generated bearer token) and two sync-consumer replicas in a
# fresh group, then runs crmsync-demo (workload, live view, summary, the last line
# "DEMO events=N crm_writes=N ..."). Afterwards it stops everything it started, by PID
# (SIGTERM, then SIGKILL after a timeout), also on Ctrl-C or failure; the broker only if it
# started it. --keep leaves everything running and prints where to look and how to stop.
#
# Logs, configs, the PID list (pids: "pid binary name" lines) and stop.sh: .cache/demo/<run>/
# (CRMSYNC_DEMO_DIR instead of .cache/demo; <dir>/latest points at the last run).
# Exit status: crmsync-demo's (0 = synced, every check passed), 2 usage, 1 set-up failure.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-build}
[[ $BUILD = /* ]] || BUILD=$REPO/$BUILD
BIN=$BUILD/bin
KAFKA_SH=$REPO/deploy/kafka/kafka.sh
STOP_TIMEOUT=${CRMSYNC_DEMO_STOP_TIMEOUT:-20} # seconds between SIGTERM and SIGKILL

usage() {
    cat <<'EOF'
usage: tools/demo.sh [--keep] [--short] [--prospects N]
  --keep          leave the pipeline running afterwards; prints admin commands, metrics URLs
                  and the stop command
  --short         a short run (300 prospects, faster pacing; well under 2 minutes)
  --prospects N   prospects to create (default 3000, 300 with --short)
Environment: BUILD (build directory, default build), CRMSYNC_BOOTSTRAP (use this broker
instead of the local one), CRMSYNC_BROKER_PORT (port of the local broker, default 19092),
CRMSYNC_DEMO_DIR (where the run directories go, default .cache/demo).
EOF
}

keep=0
short=0
prospects=
while (($#)); do
    case $1 in
        --keep) keep=1 ;;
        --short) short=1 ;;
        --prospects)
            [[ $# -ge 2 ]] || { usage >&2; exit 2; }
            prospects=$2
            shift
            ;;
        --prospects=*) prospects=${1#*=} ;;
        -h | --help) usage; exit 0 ;;
        *) echo "demo.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
if [[ -n $prospects ]] && ! [[ $prospects =~ ^[1-9][0-9]{0,5}$ ]]; then
    echo "demo.sh: --prospects wants a number from 1 to 999999" >&2
    exit 2
fi

say() { echo "demo: $*"; }
die() { echo "demo: $*" >&2; exit 1; }
rel() { local p=$1; [[ $p == "$PWD"/* ]] && p=${p#"$PWD"/}; echo "$p"; }

for p in sandbox prospect-producer crm-producer activity-producer import sync-consumer admin demo; do
    [[ -x $BIN/crmsync-$p ]] || die "$BIN/crmsync-$p is missing: run 'make build BUILD=$(rel "$BUILD")' first"
done

RUN=demo$(date +%s)-$$
DEMO_DIR=${CRMSYNC_DEMO_DIR:-$REPO/.cache/demo}
RUNDIR=$DEMO_DIR/$RUN
mkdir -p "$RUNDIR"
ln -sfn "$RUN" "$DEMO_DIR/latest"
: >"$RUNDIR/pids"

# ---------------------------------------------------------------- stopping

# stop.sh stops what this run started (the PIDs in pids, each checked against its binary so a
# reused PID is never signalled; the broker when broker_started says so). The trap below
# runs it too, so --keep and normal runs share one way of stopping.
cat >"$RUNDIR/stop.sh" <<EOF
#!/usr/bin/env bash
# Stops what tools/demo.sh started for run $RUN (generated).
set -uo pipefail
RUNDIR=$(printf '%q' "$RUNDIR")
KAFKA_SH=$(printf '%q' "$KAFKA_SH")
TIMEOUT=\${CRMSYNC_DEMO_STOP_TIMEOUT:-$STOP_TIMEOUT}
quiet=0; [[ \${1:-} == --quiet ]] && quiet=1
ours() { # pid exe: the process is alive, not a zombie, and runs exe (maybe rebuilt since)
    local st x
    [[ -r /proc/\$1/stat ]] || return 1
    st=\$(awk '{print \$3}' "/proc/\$1/stat" 2>/dev/null) || return 1
    [[ -n \$st && \$st != Z && \$st != X ]] || return 1
    x=\$(readlink "/proc/\$1/exe" 2>/dev/null) || return 1
    [[ \$x == "\$2" || \$x == "\$2 (deleted)" ]]
}
stop_group() { # "pid exe name" lines on stdin: SIGTERM, wait, SIGKILL
    local pid exe name left deadline
    local -a pids=() exes=() names=()
    while read -r pid exe name; do
        [[ -n \$pid ]] || continue
        pids+=("\$pid"); exes+=("\$exe"); names+=("\$name")
    done
    for i in "\${!pids[@]}"; do
        ours "\${pids[\$i]}" "\${exes[\$i]}" && kill -TERM "\${pids[\$i]}" 2>/dev/null
    done
    deadline=\$((SECONDS + TIMEOUT))
    while :; do
        left=0
        for i in "\${!pids[@]}"; do ours "\${pids[\$i]}" "\${exes[\$i]}" && left=1; done
        ((left)) || break
        if ((SECONDS >= deadline)); then
            for i in "\${!pids[@]}"; do
                if ours "\${pids[\$i]}" "\${exes[\$i]}"; then
                    echo "demo: \${names[\$i]} (pid \${pids[\$i]}) did not stop in \${TIMEOUT}s: SIGKILL" >&2
                    kill -KILL "\${pids[\$i]}" 2>/dev/null
                fi
            done
            sleep 0.2
            break
        fi
        sleep 0.2
    done
}
((quiet)) || echo "demo: stopping run $RUN"
# producers and replicas first (they drain into Kafka and call the sandbox), then the sandbox
grep -v ' sandbox\$' "\$RUNDIR/pids" | stop_group
grep ' sandbox\$' "\$RUNDIR/pids" | stop_group
if [[ -f \$RUNDIR/broker_started ]]; then
    ((quiet)) || echo "demo: stopping the broker this run started"
    CRMSYNC_BROKER_PORT=\$(cat "\$RUNDIR/broker_started") "\$KAFKA_SH" stop >/dev/null || true
    rm -f "\$RUNDIR/broker_started"
fi
((quiet)) || echo "demo: stopped"
exit 0
EOF
chmod +x "$RUNDIR/stop.sh"

finished=0 # 1 once crmsync-demo has run to its end (--keep then keeps everything)
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if ((keep && finished)); then
        exit "$rc"
    fi
    "$RUNDIR/stop.sh" --quiet
    wait 2>/dev/null || true # reap our children
    exit "$rc"
}
# On Ctrl-C (or timeout(1), which signals its whole process group) crmsync-demo, in this
# script's group, got the signal too and stops its workload; a signal sent to this script
# alone is passed on to it after 2 s (not at once: a second signal makes it exit without its
# summary). It gets a few seconds to print what it saw, then everything is stopped.
DEMO_PID=
demo_running() {
    local st
    st=$(awk '{print $3}' "/proc/$DEMO_PID/stat" 2>/dev/null) || return 1
    [[ $st != Z && $st != X ]]
}
on_signal() { # exit-status signal-name
    trap 'exit $1' INT TERM # a second signal: no more waiting
    if [[ -n $DEMO_PID ]]; then
        local t=0
        while demo_running && ((t < 100)); do # 10 s
            ((t == 20)) && kill -"$2" "$DEMO_PID" 2>/dev/null
            sleep 0.1
            t=$((t + 1))
        done
    fi
    exit "$1"
}
trap cleanup EXIT
trap 'on_signal 130 INT' INT
trap 'on_signal 143 TERM' TERM

# start NAME LOG CMD...: runs CMD in the background in a session of its own (a terminal's
# Ctrl-C or hang-up does not reach it: this script stops it, and --keep really keeps it),
# output to LOG, and records its PID. setsid execs CMD in place (a background child of a
# script is no process group leader, so setsid need not fork): $! is the program itself.
start() {
    local name=$1 log=$2
    shift 2
    setsid "$@" >"$log" 2>&1 </dev/null &
    local pid=$!
    echo "$pid $(readlink -f "$1") $name" >>"$RUNDIR/pids"
    LAST_PID=$pid
}

# wait_for LOG PID REGEX WHAT: waits until LOG holds a line matching REGEX (the first
# capture group is printed), failing when the process exits or after 30 s.
wait_for() {
    local log=$1 pid=$2 re=$3 what=$4 deadline=$((SECONDS + 30)) line
    while ((SECONDS < deadline)); do
        if line=$(grep -m1 -oE "$re" "$log" 2>/dev/null); then
            [[ $line =~ $re ]] && echo "${BASH_REMATCH[1]}" && return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 20 "$log" >&2
            die "$what exited at start (log: $(rel "$log"))"
        fi
        sleep 0.1
    done
    tail -n 20 "$log" >&2
    die "$what did not come up in 30 s (log: $(rel "$log"))"
}

# ---------------------------------------------------------------- broker and topics

if [[ -n ${CRMSYNC_BOOTSTRAP:-} ]]; then
    BOOTSTRAP=$CRMSYNC_BOOTSTRAP
    say "using the broker at $BOOTSTRAP"
elif "$KAFKA_SH" status >/dev/null 2>&1; then
    BOOTSTRAP=$("$KAFKA_SH" bootstrap)
    say "using the running local broker at $BOOTSTRAP"
else
    say "starting the local Kafka broker"
    echo "${CRMSYNC_BROKER_PORT:-19092}" >"$RUNDIR/broker_started" # before: a failed start is stopped too
    "$KAFKA_SH" start
    BOOTSTRAP=$("$KAFKA_SH" bootstrap)
fi
export CRMSYNC_KAFKA_BOOTSTRAP_SERVERS=$BOOTSTRAP

# Every program reads the topic names (and the shared API settings below) from the
# environment; each ignores the variables of options it does not have.
PREFIX=$RUN.
export CRMSYNC_TOPIC_PROSPECT=${PREFIX}prospect-changes
export CRMSYNC_TOPIC_ACTIVITY=${PREFIX}activities
export CRMSYNC_TOPIC_CRM=${PREFIX}crm-changes
export CRMSYNC_TOPIC_CONTROL=${PREFIX}control
export CRMSYNC_TOPIC_STATE=${PREFIX}sync-state
export CRMSYNC_TOPIC_ERRORS=${PREFIX}sync-errors
export CRMSYNC_TOPIC_CURSORS=${PREFIX}producer-cursors
if ! "$BIN/crmsync-admin" topics create >"$RUNDIR/topics.log" 2>&1; then
    cat "$RUNDIR/topics.log" >&2
    die "could not create the topics"
fi
say "run $RUN: topics ${PREFIX}*, logs in $(rel "$RUNDIR")/"

# ---------------------------------------------------------------- sandbox

start sandbox "$RUNDIR/sandbox.log" "$BIN/crmsync-sandbox" --port 0 --threads 16
SANDBOX_PID=$LAST_PID
SANDBOX=$(wait_for "$RUNDIR/sandbox.log" "$SANDBOX_PID" '^listening on (http://[^ ]+)' crmsync-sandbox)
say "sandbox (CRM + marketing APIs) on $SANDBOX"

export CRMSYNC_CRM_LOGIN_URL=$SANDBOX
export CRMSYNC_MKT_BASE_URL=$SANDBOX
export CRMSYNC_CRM_CLIENT_ID=crmsync-sandbox-client
export CRMSYNC_CRM_CLIENT_SECRET=sandbox-secret
export CRMSYNC_MKT_BUSINESS_UNIT_ID=0Uv5g000000SBOXCA4

# ---------------------------------------------------------------- producers

start prospect-producer "$RUNDIR/prospect-producer.log" "$BIN/crmsync-prospect-producer" \
    --poll.interval.ms 1000 --http.port 0 --shutdown.timeout.ms 5000
PP_PID=$LAST_PID
start crm-producer "$RUNDIR/crm-producer.log" "$BIN/crmsync-crm-producer" \
    --poll.interval.ms 1000 --http.port 0 --shutdown.timeout.ms 5000
CP_PID=$LAST_PID
TOKEN=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
(umask 077 && echo "$TOKEN" >"$RUNDIR/ingest.token")
CRMSYNC_INGEST_TOKEN=$TOKEN start activity-producer "$RUNDIR/activity-producer.log" \
    "$BIN/crmsync-activity-producer" --http.port 0 --shutdown.timeout.ms 5000
AP_PID=$LAST_PID

# ---------------------------------------------------------------- sync consumers

USERS_MAP=$("$BIN/crmsync-demo" --demo.sandbox_url "$SANDBOX" users-map)
GROUP=$RUN-sync
cat >"$RUNDIR/sync-consumer.conf" <<EOF
# sync-consumer replicas of demo run $RUN (kafka, topics and API settings: environment)
group.id=$GROUP
users.map=$USERS_MAP
http.port=0
EOF
start sync-consumer-1 "$RUNDIR/sync-consumer-1.log" "$BIN/crmsync-sync-consumer" \
    --config "$RUNDIR/sync-consumer.conf"
C1_PID=$LAST_PID
start sync-consumer-2 "$RUNDIR/sync-consumer-2.log" "$BIN/crmsync-sync-consumer" \
    --config "$RUNDIR/sync-consumer.conf"
C2_PID=$LAST_PID

METRICS_RE='metrics on (http://[0-9.]+:[0-9]+)'
PP=$(wait_for "$RUNDIR/prospect-producer.log" "$PP_PID" "$METRICS_RE" crmsync-prospect-producer)
CP=$(wait_for "$RUNDIR/crm-producer.log" "$CP_PID" "$METRICS_RE" crmsync-crm-producer)
AP=$(wait_for "$RUNDIR/activity-producer.log" "$AP_PID" 'ingest endpoint (http://[0-9.]+:[0-9]+)' \
    crmsync-activity-producer)
C1=$(wait_for "$RUNDIR/sync-consumer-1.log" "$C1_PID" "$METRICS_RE" "sync-consumer replica 1")
C2=$(wait_for "$RUNDIR/sync-consumer-2.log" "$C2_PID" "$METRICS_RE" "sync-consumer replica 2")
say "producers: prospect $PP, crm $CP, activity ingest $AP/v1/activities"
say "sync-consumer replicas (group $GROUP): $C1, $C2"

cat >"$RUNDIR/admin.conf" <<EOF
# crmsync-admin against demo run $RUN
kafka.bootstrap.servers=$BOOTSTRAP
topic.prospect=$CRMSYNC_TOPIC_PROSPECT
topic.activity=$CRMSYNC_TOPIC_ACTIVITY
topic.crm=$CRMSYNC_TOPIC_CRM
topic.control=$CRMSYNC_TOPIC_CONTROL
topic.state=$CRMSYNC_TOPIC_STATE
topic.errors=$CRMSYNC_TOPIC_ERRORS
topic.cursors=$CRMSYNC_TOPIC_CURSORS
group.id=$GROUP
admin.consumers=$C1,$C2
EOF

# ---------------------------------------------------------------- the workload

demo_args=(--demo.sandbox_url "$SANDBOX" --demo.consumers "$C1,$C2"
    --demo.prospect_producer "$PP" --demo.crm_producer "$CP" --demo.ingest_url "$AP"
    --demo.run_dir "$RUNDIR" --demo.result_file "$RUNDIR/result")
((short)) && demo_args+=(--demo.short true)
[[ -n $prospects ]] && demo_args+=(--demo.prospects "$prospects")
say "running the workload; the view refreshes every second"
echo
# In the background, waited for: a signal to this script interrupts `wait` at once.
CRMSYNC_DEMO_INGEST_TOKEN=$TOKEN "$BIN/crmsync-demo" "${demo_args[@]}" &
DEMO_PID=$!
echo "$DEMO_PID $(readlink -f "$BIN/crmsync-demo") crmsync-demo" >>"$RUNDIR/pids"
set +e
wait "$DEMO_PID"
rc=$?
set -e
DEMO_PID=
finished=1

if ((keep)); then
    ADMIN="$(rel "$BIN")/crmsync-admin --config $(rel "$RUNDIR")/admin.conf"
    cat <<EOF

demo: --keep: everything keeps running (run $RUN, logs in $(rel "$RUNDIR")/).
  look around:
    $ADMIN status
    $ADMIN queue
    $ADMIN prospect $(grep -m1 '^key=' "$RUNDIR/result" 2>/dev/null | cut -d= -f2- || echo KEY)
    $ADMIN errors list
    $ADMIN pause        # and: unpause
  metrics and views:
    sync-consumer replica 1  $C1/metrics   $C1/status   $C1/queue
    sync-consumer replica 2  $C2/metrics   $C2/status   $C2/queue
    prospect producer        $PP/metrics
    crm producer             $CP/metrics
    activity producer        $AP/metrics   (POST $AP/v1/activities, token in $(rel "$RUNDIR")/ingest.token)
    sandbox                  $SANDBOX/sandbox/stats   $SANDBOX/sandbox/snapshot
  stop everything:
    $(rel "$RUNDIR")/stop.sh      (or $(rel "$DEMO_DIR")/latest/stop.sh)
EOF
    # the contract of the demo: its last line is the DEMO line
    [[ -s $RUNDIR/result ]] && head -n1 "$RUNDIR/result"
fi
exit "$rc"
