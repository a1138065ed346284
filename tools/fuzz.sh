#!/usr/bin/env bash
# tools/fuzz.sh [target...]: builds the libFuzzer targets (tests/fuzz/) with clang-14,
# AddressSanitizer and UndefinedBehaviorSanitizer in $BUILD (default build-fuzz), and runs
# each for FUZZ_SECONDS (default 60) on a copy of its seed corpus. Exits 1 when any target
# crashed, leaked, timed out or broke an invariant. Used by `make fuzz`.
#
# Targets: avro conf csv activity api_responses soql (default: all).
# Environment:
#   FUZZ_SECONDS   run time per target (default 60)
#   FUZZ_JOBS      parallel libFuzzer workers per target (default 1)
#   FUZZ_ARGS      extra libFuzzer flags (e.g. "-max_len=65536")
#   BUILD          build directory (default build-fuzz)
#
# Nothing grows inside the git tree: the working corpus (seeds + regressions + what the run
# finds) lives in $BUILD/fuzz-work/<target>/corpus and is kept between runs; crash inputs
# land in $BUILD/fuzz-work/<target>/artifacts/. A crash input becomes a regression test by
# copying it to tests/fuzz/regressions/<target>/ (tests/unit/test_fuzz_regressions.c
# replays that directory in every build).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-build-fuzz}
[[ $BUILD = /* ]] || BUILD=$REPO/$BUILD
SECONDS_PER=${FUZZ_SECONDS:-60}
JOBS=${FUZZ_JOBS:-1}
ALL=(avro conf csv activity api_responses soql)
targets=("$@")
((${#targets[@]})) || targets=("${ALL[@]}")
for t in "${targets[@]}"; do
    [[ " ${ALL[*]} " == *" $t "* ]] || { echo "fuzz: unknown target $t (${ALL[*]})" >&2; exit 2; }
done

"$REPO/tools/install-deps.sh" --fuzz
CC=${FUZZ_CC:-clang-14}
command -v "$CC" >/dev/null || { echo "fuzz: $CC not found" >&2; exit 1; }

echo "== fuzz: building ${targets[*]} in $BUILD ($CC, libFuzzer + ASan + UBSan)"
cmake -S "$REPO" -B "$BUILD" -DCMAKE_C_COMPILER="$CC" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCRMSYNC_FUZZ=ON >/dev/null
mkdir -p "$BUILD/fuzz-work"
if ! cmake --build "$BUILD" -j"${JOBS_BUILD:-2}" --target $(printf 'fuzz_%s ' "${targets[@]}") \
    >"$BUILD/fuzz-work/build.log" 2>&1; then
    tail -n 40 "$BUILD/fuzz-work/build.log"
    echo "fuzz: build failed (log: $BUILD/fuzz-work/build.log)" >&2
    exit 1
fi

# halt_on_error: UBSan findings stop the run like ASan's do. detect_leaks: a harness input
# that leaks is a finding too. The OOM and time limits catch blow-ups on small inputs.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

failed=()
summary=()
for t in "${targets[@]}"; do
    work=$BUILD/fuzz-work/$t
    mkdir -p "$work/corpus" "$work/artifacts"
    cp -n "$REPO/tests/fuzz/corpus/$t/"* "$work/corpus/" 2>/dev/null || true
    cp -n "$REPO/tests/fuzz/regressions/$t/"* "$work/corpus/" 2>/dev/null || true
    log=$work/fuzz.log
    echo "== fuzz_$t: ${SECONDS_PER}s, corpus $(find "$work/corpus" -type f | wc -l) files"
    rc=0
    (cd "$work" && "$BUILD/fuzz/fuzz_$t" "$work/corpus" \
        -max_total_time="$SECONDS_PER" -timeout=25 -rss_limit_mb=2560 -max_len=16384 \
        -print_final_stats=1 -artifact_prefix="$work/artifacts/" \
        $( ((JOBS > 1)) && echo "-jobs=$JOBS -workers=$JOBS") ${FUZZ_ARGS:-} \
        >"$log" 2>&1) || rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n1)
    cov=$(grep -Eo 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -n1 || true)
    line="fuzz_$t: ${execs:-?} execs, ${speed:-?} exec/s, ${cov:-no coverage line}, corpus $(find "$work/corpus" -type f | wc -l)"
    if ((rc)); then
        failed+=("$t")
        line+=" -- FAILED (exit $rc)"
        echo "$line"
        grep -E 'ERROR: |runtime error|invariant broken|SUMMARY' "$log" | head -n 8 || true
        echo "   log: $log"
        ls "$work/artifacts/" 2>/dev/null | sed "s|^|   artifact: $work/artifacts/|"
    else
        echo "$line"
    fi
    summary+=("$line")
done

echo "== fuzz summary"
printf '   %s\n' "${summary[@]}"
if ((${#failed[@]})); then
    echo "== fuzz: FAILED: ${failed[*]}. Reproduce: $BUILD/fuzz/fuzz_<target> <artifact>;"
    echo "   keep it fixed: copy the artifact to tests/fuzz/regressions/<target>/"
    exit 1
fi
echo "== fuzz: no crash"
