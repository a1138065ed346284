#!/usr/bin/env bash
# Local single-node Kafka 4.3.1 (KRaft, combined broker+controller) for crmsync's tests,
# demo and benchmarks, run from Maven Central jars: no tarball, no Docker.
#
#   deploy/kafka/kafka.sh fetch       copy the broker jars into the cache (once)
#   deploy/kafka/kafka.sh start       fetch if needed, format storage (first start), start, wait
#   deploy/kafka/kafka.sh stop        stop the broker started from this cache (by pidfile)
#   deploy/kafka/kafka.sh status      exit 0 if running, 3 if not
#   deploy/kafka/kafka.sh reset       stop, then delete the data directory
#   deploy/kafka/kafka.sh bootstrap   print the bootstrap address (127.0.0.1:<port>)
#
# Environment:
#   CRMSYNC_CACHE               cache directory (default <repo>/.cache)
#   CRMSYNC_BROKER_PORT          client port (default 19092); the controller uses port+1
#   CRMSYNC_BROKER_AUTO_CREATE  true: start with auto.create.topics.enable=true (manual
#                               checks with kcat only; crmsync creates its topics itself)
#   CRMSYNC_BROKER_TIMEOUT      seconds to wait for the broker to answer (default 90)
#   JAVA_HOME / MVN             which java / mvn to use (default: the ones on PATH)
# The variables are CRMSYNC_BROKER_*, not CRMSYNC_KAFKA_*: crmsync programs read every
# CRMSYNC_KAFKA_<X> as the librdkafka property kafka.<x>. See docs/KAFKA-LOCAL.md.
set -euo pipefail

readonly KAFKA_VERSION=4.3.1
readonly DEP_PLUGIN=org.apache.maven.plugins:maven-dependency-plugin:3.8.1

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE=${CRMSYNC_CACHE:-$REPO/.cache}
PORT=${CRMSYNC_BROKER_PORT:-19092}
TIMEOUT=${CRMSYNC_BROKER_TIMEOUT:-90}
AUTO_CREATE=${CRMSYNC_BROKER_AUTO_CREATE:-false}

if ! [[ $PORT =~ ^[0-9]+$ ]] || ((PORT < 1024 || PORT > 65534)); then
    echo "kafka.sh: CRMSYNC_BROKER_PORT must be a number in 1024..65534, not '$PORT'" >&2
    exit 2
fi
case $AUTO_CREATE in
    true | false) ;;
    *) echo "kafka.sh: CRMSYNC_BROKER_AUTO_CREATE must be true or false" >&2; exit 2 ;;
esac
CPORT=$((PORT + 1))

KHOME=$CACHE/kafka-$KAFKA_VERSION # jars: $KHOME/lib, stamp: $KHOME/fetched.stamp
LIB=$KHOME/lib
STAMP=$KHOME/fetched.stamp
DATA=$CACHE/kafka-data-$PORT # server.properties + log.dirs (log/)
PROPS=$DATA/server.properties
LOGDIRS=$DATA/log
LOGFILE=$CACHE/kafka-$PORT.log
PIDFILE=$CACHE/kafka-$PORT.pid

say() { echo "kafka.sh: $*"; }
die() { echo "kafka.sh: $*" >&2; exit 1; }

now_ms() { date +%s%3N; }

# ---------------------------------------------------------------- tools

find_java() {
    local j
    if [[ -n ${JAVA_HOME:-} && -x $JAVA_HOME/bin/java ]]; then
        j=$JAVA_HOME/bin/java
    elif j=$(command -v java 2>/dev/null); then
        :
    else
        die "java not found (set JAVA_HOME or put java 17+ on PATH; tools/install-deps.sh installs it)"
    fi
    # "openjdk version "17.0.15" ..." / "java version "1.8.0_402"" -> major version
    local v major
    v=$("$j" -version 2>&1 | sed -n 's/.*version "\([^"]*\)".*/\1/p' | head -n1)
    major=${v%%.*}
    [[ $major == 1 ]] && major=$(echo "$v" | cut -d. -f2)
    if ! [[ $major =~ ^[0-9]+$ ]] || ((major < 17)); then
        die "Kafka $KAFKA_VERSION needs Java 17+, $j is '${v:-unknown}'"
    fi
    JAVA=$j
}

find_mvn() {
    if [[ -n ${MVN:-} ]]; then
        [[ -x $MVN ]] || MVN=$(command -v "$MVN" 2>/dev/null) || die "MVN=$MVN is not executable"
    elif [[ -n ${MAVEN_HOME:-} && -x $MAVEN_HOME/bin/mvn ]]; then
        MVN=$MAVEN_HOME/bin/mvn
    elif ! MVN=$(command -v mvn 2>/dev/null); then
        die "mvn not found (put Maven on PATH or set MVN; tools/install-deps.sh installs it)"
    fi
}

# ---------------------------------------------------------------- fetch

pom_sum() { sha256sum "$HERE/pom.xml" | cut -d' ' -f1; }

fetched() {
    [[ -f $STAMP && $(cat "$STAMP") == "$(pom_sum)" ]] && compgen -G "$LIB/kafka_2.13-$KAFKA_VERSION.jar" >/dev/null
}

cmd_fetch() {
    fetched && return 0
    mkdir -p "$KHOME"
    # One fetch at a time per cache (make test and make demo may race on a fresh machine).
    # The subshell closes the lock fd, so a broker started afterwards does not inherit it.
    (
        exec 8>"$KHOME/fetch.lock"
        flock 8
        fetched && exit 0
        do_fetch
    )
}

do_fetch() {
    find_mvn
    local t0 tmp
    t0=$(now_ms)
    say "fetching Kafka $KAFKA_VERSION jars from Maven Central into $LIB ..."
    tmp=$KHOME/lib.tmp.$$
    rm -rf "$tmp"
    # -f <pom> with an absolute outputDirectory: nothing is written beside the POM.
    if ! "$MVN" -B -q -Dstyle.color=never -f "$HERE/pom.xml" \
        "$DEP_PLUGIN:copy-dependencies" -DincludeScope=runtime -DoutputDirectory="$tmp" \
        >"$KHOME/fetch.log" 2>&1; then
        rm -rf "$tmp"
        tail -n 40 "$KHOME/fetch.log" >&2
        die "mvn copy-dependencies failed (log: $KHOME/fetch.log)"
    fi
    [[ -f $tmp/kafka_2.13-$KAFKA_VERSION.jar ]] || { rm -rf "$tmp"; die "fetch: kafka_2.13-$KAFKA_VERSION.jar missing"; }
    rm -rf "$LIB"
    mv "$tmp" "$LIB"
    pom_sum >"$STAMP" # only after a complete copy
    say "fetched $(find "$LIB" -name '*.jar' | wc -l) jars in $(( ($(now_ms) - t0) / 1000 )) s"
}

# ---------------------------------------------------------------- process helpers

# pid of our broker (pidfile + live process whose command line is kafka.Kafka on our
# server.properties), or empty. Guards against a stale pidfile and a reused pid.
broker_pid() {
    local pid state
    [[ -f $PIDFILE ]] || return 0
    pid=$(tr -dc '0-9' <"$PIDFILE")
    [[ -n $pid ]] || return 0
    [[ -r /proc/$pid/cmdline ]] || return 0
    state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || true)
    [[ $state == Z || $state == X ]] && return 0
    local cmdline
    cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)
    [[ $cmdline == *"kafka.Kafka $PROPS"* ]] && echo "$pid"
    return 0
}

alive() { # pid: process exists and is not a zombie
    local state
    [[ -r /proc/$1/stat ]] || return 1
    state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null || true)
    [[ -n $state && $state != Z && $state != X ]]
}

port_open() { # port: something accepts TCP connections on 127.0.0.1:port
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# The broker answers a metadata request and lists itself.
answers() {
    if command -v kcat >/dev/null 2>&1; then
        port_open "$PORT" || return 1
        local md # (not piped into grep -q: with pipefail, kcat's SIGPIPE would fail the check)
        md=$(kcat -L -b "127.0.0.1:$PORT" -m 5 -X log_level=0 2>/dev/null) || return 1
        [[ $md == *"broker 1 at 127.0.0.1:$PORT"* ]]
    else
        grep -q "Kafka Server started" "$LOGFILE" 2>/dev/null && port_open "$PORT"
    fi
}

# ---------------------------------------------------------------- start

write_props() {
    mkdir -p "$DATA" "$LOGDIRS"
    cat >"$PROPS.tmp" <<EOF
# Written by deploy/kafka/kafka.sh at every start; edit the template there, not this file.
# Single-node KRaft: this process is both the broker and the only controller (static voter).
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CPORT
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CPORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$LOGDIRS

# Sized for a 2-core machine.
num.network.threads=2
num.io.threads=2
num.recovery.threads.per.data.dir=1
background.threads=2
log.cleaner.threads=1
log.cleaner.dedupe.buffer.size=33554432

# One broker: every replication factor is 1.
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# Internal topics with 1 partition: a single broker coordinates every group and every
# transactional id anyway, and creating and loading 50 partitions of __consumer_offsets on
# the first group join costs seconds on 2 cores. Groups work the same (all map to partition 0).
offsets.topic.num.partitions=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.num.partitions=1

# Tests join groups all the time: no 3 s wait for more members.
group.initial.rebalance.delay.ms=0
# crmsync creates its topics explicitly (CRMSYNC_BROKER_AUTO_CREATE=true for manual checks).
auto.create.topics.enable=$AUTO_CREATE
num.partitions=1
delete.topic.enable=true

# Retention: a week or 1 GiB per partition; \`kafka.sh reset\` wipes everything.
log.retention.hours=168
log.retention.bytes=1073741824
log.segment.bytes=134217728
EOF
    mv "$PROPS.tmp" "$PROPS"
}

# base64url of 16 random bytes, as kafka.tools.StorageTool random-uuid prints (no JVM start)
cluster_id() {
    local id
    while :; do
        id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
        [[ ${id:0:1} != - ]] && break
    done
    echo "${id:0:22}"
}

format_storage() {
    [[ -f $LOGDIRS/meta.properties ]] && return 0
    local cid
    cid=$(cluster_id)
    say "formatting storage in $LOGDIRS (cluster id $cid)"
    if ! "$JAVA" -Xmx256m -Dlog4j2.configurationFile="$HERE/log4j2.properties" \
        -cp "$LIB/*" kafka.tools.StorageTool format -t "$cid" -c "$PROPS" >>"$LOGFILE" 2>&1; then
        tail -n 30 "$LOGFILE" >&2
        die "storage format failed (log: $LOGFILE)"
    fi
}

cmd_start() {
    local pid t0 deadline
    pid=$(broker_pid)
    if [[ -n $pid ]]; then
        if answers; then
            say "already running (pid $pid, 127.0.0.1:$PORT)"
            return 0
        fi
        say "pid $pid is starting; waiting for it"
    else
        rm -f "$PIDFILE"
        if port_open "$PORT" || port_open "$CPORT"; then
            die "port $PORT or $CPORT on 127.0.0.1 is taken by another process (set CRMSYNC_BROKER_PORT)"
        fi
        find_java
        cmd_fetch
        mkdir -p "$CACHE"
        [[ -f $LOGFILE ]] && mv -f "$LOGFILE" "$LOGFILE.prev"
        : >"$LOGFILE"
        write_props
        format_storage
        t0=$(now_ms)
        # setsid: the broker outlives this script and is not hit by a Ctrl-C aimed at it.
        # The inner shell writes its own pid, then execs java, so the pidfile holds java's pid.
        local -a jvm=(
            -Xms256m -Xmx512m
            -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35
            -XX:+ExplicitGCInvokesConcurrent -XX:MaxInlineLevel=15
            -Djava.awt.headless=true
            -Dkafka.logs.dir="$CACHE"
            -Dlog4j2.configurationFile="$HERE/log4j2.properties"
            -cp "$LIB/*"
        )
        local launcher=()
        command -v setsid >/dev/null 2>&1 && launcher=(setsid)
        # shellcheck disable=SC2016 # $$ and $1 are the inner shell's
        "${launcher[@]}" bash -c 'echo $$ >"$1"; shift; exec "$@"' kafka-launch "$PIDFILE" \
            "$JAVA" "${jvm[@]}" kafka.Kafka "$PROPS" </dev/null >>"$LOGFILE" 2>&1 &
        # wait for the pidfile to be written
        for _ in $(seq 1 50); do
            [[ -s $PIDFILE ]] && break
            sleep 0.1
        done
        pid=$(tr -dc '0-9' <"$PIDFILE" 2>/dev/null || true)
        [[ -n $pid ]] || die "broker did not start (no pid)"
    fi
    t0=${t0:-$(now_ms)}
    deadline=$((SECONDS + TIMEOUT))
    while ((SECONDS < deadline)); do
        if ! alive "$pid"; then
            echo "---- last lines of $LOGFILE" >&2
            tail -n 40 "$LOGFILE" >&2
            rm -f "$PIDFILE"
            die "broker exited during startup"
        fi
        if answers; then
            local ms
            ms=$(($(now_ms) - t0))
            say "Kafka $KAFKA_VERSION up on 127.0.0.1:$PORT (pid $pid) in $((ms / 1000)).$(printf '%03d' $((ms % 1000))) s; log $LOGFILE"
            return 0
        fi
        sleep 0.3
    done
    echo "---- last lines of $LOGFILE" >&2
    tail -n 40 "$LOGFILE" >&2
    die "broker did not answer on 127.0.0.1:$PORT within $TIMEOUT s (still running as pid $pid; 'kafka.sh stop' ends it)"
}

# ---------------------------------------------------------------- stop / status / reset

cmd_stop() {
    local pid
    pid=$(broker_pid)
    if [[ -z $pid ]]; then
        rm -f "$PIDFILE"
        say "not running (port $PORT)"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 300); do # 30 s
        alive "$pid" || break
        sleep 0.1
    done
    if alive "$pid"; then
        say "pid $pid still running after 30 s: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do
            alive "$pid" || break
            sleep 0.1
        done
    fi
    rm -f "$PIDFILE"
    say "stopped (pid $pid, port $PORT)"
}

cmd_status() {
    local pid
    pid=$(broker_pid)
    if [[ -n $pid ]]; then
        if answers; then
            echo "running: pid $pid, 127.0.0.1:$PORT (controller $CPORT), data $DATA"
        else
            echo "running (not answering yet): pid $pid, 127.0.0.1:$PORT, log $LOGFILE"
        fi
        return 0
    fi
    echo "not running (port $PORT)"
    return 3
}

cmd_reset() {
    cmd_stop
    if [[ -d $DATA ]]; then
        case $DATA in
            */kafka-data-"$PORT") rm -rf -- "$DATA" ;;
            *) die "refusing to delete unexpected path $DATA" ;;
        esac
        say "deleted $DATA"
    fi
}

case ${1:-} in
    fetch) cmd_fetch ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    reset) cmd_reset ;;
    bootstrap) echo "127.0.0.1:$PORT" ;;
    *)
        sed -n '2,22s/^# \{0,1\}//p' "$0" >&2
        exit 2
        ;;
esac
