#!/usr/bin/env bash
# tools/install-deps.sh: everything crmsync needs to build, test and demo, on a fresh Debian 12
# machine. Used by `make test`, `make demo` and CI. Idempotent: a second run changes nothing
# and prints one line.
#
#   1. Debian packages (build tools, librdkafka/avro/jansson/curl/microhttpd headers, kcat,
#      curl and openssl for the tests,
#      Java 17 + Maven if java/mvn are missing, python3-venv if python3 cannot make a venv):
#      only the missing ones, checked with dpkg; `apt-get update` only when one is missing.
#   2. The Kafka 4.3.1 broker jars: deploy/kafka/kafka.sh fetch (Maven Central, cached).
#   3. The Python venv of the interop tests, <repo>/.cache/venv, from
#      tests/interop/requirements.txt (redone only when that file changes).
#
# Environment: CRMSYNC_CACHE (cache directory, default <repo>/.cache; the venv always lives
# in <repo>/.cache/venv, where tests/CMakeLists.txt looks for it).
#
# --fuzz also installs clang-14 and its sanitizer/libFuzzer runtimes (make fuzz).
set -euo pipefail

FUZZ=0
for arg in "$@"; do
    case $arg in
        --fuzz) FUZZ=1 ;;
        *) echo "usage: tools/install-deps.sh [--fuzz]" >&2; exit 2 ;;
    esac
done

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${CRMSYNC_CACHE:-$REPO/.cache}
VENV=$REPO/.cache/venv
REQ=$REPO/tests/interop/requirements.txt
VENV_STAMP=$VENV/.crmsync-requirements.stamp

did=0
say() { echo "install-deps: $*"; did=1; }
die() { echo "install-deps: $*" >&2; exit 1; }

mkdir -p "$CACHE" "$REPO/.cache"
# One run at a time (make test and make demo started together on a fresh machine).
exec 9>"$CACHE/install-deps.lock"
flock 9

# ------------------------------------------------------------------ 1. Debian packages

SUDO=()
if ((EUID != 0)); then
    command -v sudo >/dev/null 2>&1 || die "not root and no sudo: cannot install packages"
    SUDO=(sudo)
fi

pkg_installed() {
    [[ $(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null) == installed ]]
}

java_ok() { # java 17+ via JAVA_HOME or PATH
    local j v major
    if [[ -n ${JAVA_HOME:-} && -x $JAVA_HOME/bin/java ]]; then
        j=$JAVA_HOME/bin/java
    else
        j=$(command -v java 2>/dev/null) || return 1
    fi
    v=$("$j" -version 2>&1 | sed -n 's/.*version "\([^"]*\)".*/\1/p' | head -n1)
    major=${v%%.*}
    [[ $major =~ ^[0-9]+$ ]] && ((major >= 17))
}

venv_capable() { # python: can make a venv with pip in it (Debian splits ensurepip out)
    [[ -n $1 ]] && "$1" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 9))' >/dev/null 2>&1
}

pick_python() { # prefer python3 on PATH (pyenv here), then Debian's
    local p
    for p in "$(command -v python3 2>/dev/null || true)" /usr/bin/python3; do
        if venv_capable "$p"; then
            PY=$p
            return 0
        fi
    done
    return 1
}

want=(ca-certificates cmake pkg-config librdkafka-dev libavro-dev libjansson-dev
      libcurl4-openssl-dev libmicrohttpd-dev libssl-dev kcat curl openssl)
command -v gcc >/dev/null 2>&1 || want+=(build-essential)
command -v make >/dev/null 2>&1 || want+=(make)
java_ok || want+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || want+=(maven)
((FUZZ)) && want+=(clang-14 libclang-rt-14-dev)
PY=
pick_python || want+=(python3 python3-venv)

missing=()
for p in "${want[@]}"; do
    pkg_installed "$p" || missing+=("$p")
done

if ((${#missing[@]})); then
    command -v apt-get >/dev/null 2>&1 || die "missing packages ${missing[*]} and no apt-get (Debian 12 expected)"
    say "apt: installing ${missing[*]}"
    aptlog=$CACHE/install-deps-apt.log
    export DEBIAN_FRONTEND=noninteractive
    if ! { "${SUDO[@]}" apt-get update -q &&
        "${SUDO[@]}" apt-get install -y -q --no-install-recommends \
            -o DPkg::Lock::Timeout=300 "${missing[@]}"; } >"$aptlog" 2>&1; then
        tail -n 30 "$aptlog" >&2
        die "apt-get failed (log: $aptlog)"
    fi
fi
if [[ -z $PY ]]; then
    pick_python || die "no python3 that can create a venv, even after installing python3-venv"
fi

# ------------------------------------------------------------------ 2. Kafka broker jars

fetch_out=$("$REPO/deploy/kafka/kafka.sh" fetch) || die "deploy/kafka/kafka.sh fetch failed"
if [[ -n $fetch_out ]]; then
    echo "$fetch_out"
    did=1
fi

# ------------------------------------------------------------------ 3. Python venv

[[ -f $REQ ]] || die "$REQ missing"
want_stamp="$(sha256sum "$REQ" | cut -d' ' -f1)"
venv_ok() { [[ -x $VENV/bin/python ]] && "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; }

if ! venv_ok || [[ ! -f $VENV_STAMP || $(cat "$VENV_STAMP") != "$want_stamp" ]]; then
    t0=$SECONDS
    if ! venv_ok; then
        say "venv: creating $VENV with $PY ($("$PY" -V 2>&1))"
        rm -rf "$VENV"
        "$PY" -m venv "$VENV" || die "python3 -m venv failed"
    fi
    say "venv: installing $(grep -cEv '^\s*(#|$)' "$REQ") pinned packages from ${REQ#"$REPO"/}"
    piplog=$CACHE/install-deps-pip.log
    if ! "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$REQ" >"$piplog" 2>&1; then
        tail -n 30 "$piplog" >&2
        die "pip install failed (log: $piplog)"
    fi
    "$VENV/bin/python" -c 'import fastavro, simple_salesforce, pytest, requests' ||
        die "venv: the interop packages do not import"
    echo "$want_stamp" >"$VENV_STAMP" # only after success
    say "venv: ready in $((SECONDS - t0)) s ($("$VENV/bin/python" -V 2>&1))"
fi

if ((did == 0)); then
    echo "install-deps: up to date (packages, Kafka jars, venv)"
fi
