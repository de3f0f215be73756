#!/usr/bin/env bash
# Builds sked's libFuzzer targets (clang, ASan + UBSan, in build-fuzz/) and
# runs each for a bounded time on a scratch copy of its seed corpus, so the
# committed corpus never grows. `make test-fuzz` calls this; so can you:
#
#   tests/fuzz/run.sh                 # every target
#   tests/fuzz/run.sh cron http       # some of them
#   FUZZ_SECONDS=600 tests/fuzz/run.sh jobspec
#
# Time per target: FUZZ_SECONDS, else 30 s when CI=true, else 10 s. Targets
# run FUZZ_JOBS at a time (default: the number of cores). A crash, leak,
# UB report, timeout (> 5 s on one input) or broken property fails the run;
# the scratch directory is then kept and the reproducer's path printed.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${FUZZ_BUILD:-$root/build-fuzz}
case "$build" in /*) ;; *) build=$root/$build ;; esac
if [ -n "${FUZZ_SECONDS:-}" ]; then
    secs=$FUZZ_SECONDS
elif [ "${CI:-}" = true ]; then
    secs=30
else
    secs=10
fi
jobs=${FUZZ_JOBS:-$(nproc)}
if [ $# -gt 0 ]; then targets=("$@"); else targets=(cron duration jobspec http httpspec workflow yaml jschema); fi

for t in "${targets[@]}"; do
    if [ ! -f "$root/tests/fuzz/fuzz_$t.c" ]; then
        echo "run.sh: no fuzz target '$t' (have: cron duration jobspec http httpspec workflow yaml jschema)" >&2
        exit 2
    fi
done

# A cache from another compiler cannot be switched to clang in place.
if [ -f "$build/CMakeCache.txt" ] && ! grep -q '^CMAKE_C_COMPILER:FILEPATH=.*clang' "$build/CMakeCache.txt"; then
    echo "run.sh: $build was configured with another compiler; remove it first" >&2
    exit 2
fi
CC=${FUZZ_CC:-clang} cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DSKED_FUZZ=ON -DSKED_SANITIZE=ON >/dev/null || exit 1
cmake --build "$build" -j "$jobs" --target "${targets[@]/#/fuzz_}" || exit 1

work=$(mktemp -d "${TMPDIR:-/tmp}/sked-fuzz.XXXXXX") || exit 1

# One target: its own directory with the corpus copy, artifacts, a TMPDIR
# for anything it creates (fuzz_http's store), and its log.
run_one() {
    local t=$1 dir=$work/$1
    mkdir -p "$dir/corpus" "$dir/artifacts" "$dir/tmp"
    cp "$root/tests/fuzz/corpus/$t/"* "$dir/corpus/"
    local dict=()
    [ -f "$root/tests/fuzz/dict/$t.dict" ] && dict=(-dict="$root/tests/fuzz/dict/$t.dict")
    # The outer timeout is a backstop only: libFuzzer stops itself after
    # max_total_time, checked between inputs, each bounded by -timeout.
    (cd "$dir" && TMPDIR=$dir/tmp \
        ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
        UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
        timeout --kill-after=10 $((secs + 60)) "$build/fuzz_$t" \
        -max_total_time="$secs" -timeout=5 -rss_limit_mb=2048 \
        -artifact_prefix="$dir/artifacts/" -print_final_stats=1 "${dict[@]}" \
        "$dir/corpus" >"$dir/log" 2>&1)
    echo $? >"$dir/rc"
}

echo "fuzzing ${targets[*]} for ${secs}s each, $jobs at a time (scratch: $work)"
running=0
for t in "${targets[@]}"; do
    if [ "$running" -ge "$jobs" ]; then
        wait -n
        running=$((running - 1))
    fi
    run_one "$t" &
    running=$((running + 1))
done
wait

failed=0
for t in "${targets[@]}"; do
    dir=$work/$t
    rc=$(cat "$dir/rc" 2>/dev/null || echo 1)
    runs=$(grep -o 'Done [0-9]* runs in [0-9]* second(s)' "$dir/log" | tail -1)
    artifacts=$(find "$dir/artifacts" -type f | sort)
    if [ "$rc" = 0 ] && [ -z "$artifacts" ]; then
        echo "fuzz_$t: ok (${runs:-no summary})"
        continue
    fi
    failed=1
    case "$rc" in
    124 | 137) why="did not stop in time" ;;
    *) why="exit $rc" ;;
    esac
    echo "fuzz_$t: FAILED ($why); last lines of $dir/log:"
    tail -n 60 "$dir/log" | sed 's/^/    /'
    for a in $artifacts; do
        echo "fuzz_$t: reproducer $a"
        echo "    rerun: $build/fuzz_$t $a"
    done
done

if [ "$failed" = 0 ]; then
    rm -rf "$work"
    exit 0
fi
echo "fuzzing failed; scratch directory kept: $work"
exit 1
