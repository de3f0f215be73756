#!/bin/bash
# bench/profile.sh submit|lifecycle [N] [SKED]
#
# Where a server's instructions go, counted by valgrind's callgrind (exact
# and repeatable, whatever else the machine does; user space only: the
# kernel's share needs `perf record -g -p PID`). Starts SKED (default
# build/sked) as `sked server` under callgrind on a fresh SQLite store,
# drives it with build/sked-load, stops it, and prints the instructions per
# request (submit: N far-future POST /v1/jobs) or per run (lifecycle: N
# run-now /bin/true jobs submitted, claimed, confirmed and completed by one
# `sked worker` of 8 slots), as the difference between a run with N and one
# with none, over N, then the costliest functions of the loaded run. The
# callgrind files are left in $OUT (default /tmp/sked-profile) for
# callgrind_annotate or kcachegrind. Bounded: each run has a deadline.
set -u
mode=${1:-submit}; n=${2:-2000}
here=$(cd "$(dirname "$0")/.." && pwd)
sked=${3:-$here/build/sked}; load=$here/build/sked-load
out=${OUT:-/tmp/sked-profile}; mkdir -p "$out"
case $mode in submit|lifecycle) ;; *) echo "usage: $0 submit|lifecycle [N] [SKED]" >&2; exit 2 ;; esac
command -v valgrind >/dev/null || { echo "$0: valgrind not installed" >&2; exit 2; }

one() { # $1 = requests; writes $out/$mode.$1.out
    local d vp wp url i k
    d=$(mktemp -d /tmp/sked-profile.XXXXXX)
    valgrind --tool=callgrind --callgrind-out-file="$out/$mode.$1.out" "$sked" server \
        --listen 127.0.0.1:0 --store "sqlite:$d/sked.db" --token-file "$d/admin.token" \
        --rate-limit off >"$d/out" 2>"$d/err" &
    vp=$!
    for i in $(seq 600); do grep -q listening "$d/out" 2>/dev/null && break; sleep 0.1; done
    url=$(grep -o "http://[0-9.:]*" "$d/out" | head -1)
    wp=
    if [ "$mode" = lifecycle ]; then
        "$sked" worker --server "$url" --token-file "$d/admin.token" --slots 8 --name profile \
            --work-dir "$d/work" $([ "$(id -u)" = 0 ] && echo --allow-root) >"$d/wout" 2>"$d/werr" &
        wp=$!
        sleep 3
    fi
    if [ "$1" -gt 0 ]; then
        if [ "$mode" = submit ]; then
            body='{"name":"p-{n}","command":["/bin/true"],"schedules":[{"at":"2099-01-01T00:00:00Z"}]}'
        else
            body='{"name":"p-{n}","command":["/bin/true"]}'
        fi
        "$load" "$url" --token-file "$d/admin.token" --connections 8 --requests "$1" \
            --seconds 600 --timeout 120 --body "$body" >"$d/load.txt" 2>&1
        if [ "$mode" = lifecycle ]; then # until the server counts them all finished (10 min at most)
            for i in $(seq 1200); do
                k=$(curl -s -H "Authorization: Bearer $(cat "$d/admin.token")" "$url/metrics" |
                    awk '/^sked_runs_finished_total/ {s += $2} END {print s + 0}')
                [ "${k%.*}" -ge "$1" ] && break
                sleep 0.5
            done
        fi
    else
        sleep 3
    fi
    [ -n "$wp" ] && { kill -TERM "$wp"; wait "$wp" 2>/dev/null; }
    sleep 1; kill -TERM "$vp"; wait "$vp" 2>/dev/null
    rm -rf "$d"
}
total() { callgrind_annotate "$1" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}'; }

one 0; one "$n"
t0=$(total "$out/$mode.0.out"); t1=$(total "$out/$mode.$n.out")
echo "$mode: $(( (t1 - t0) / n )) instructions per $([ "$mode" = submit ] && echo request || echo run) in the server ($n, callgrind)"
echo "costliest functions, inclusive, per $([ "$mode" = submit ] && echo request || echo run) (idle run subtracted):"
for f in "$out/$mode.0.out" "$out/$mode.$n.out"; do
    callgrind_annotate --auto=no --inclusive=yes "$f" 2>/dev/null >"$f.txt"
done
python3 - "$out/$mode.0.out.txt" "$out/$mode.$n.out.txt" "$n" <<'PY'
import re, sys
def read(path):
    d = {}
    for line in open(path):
        m = re.match(r"^\s*([\d,]+) \(\s*[\d.]+%\)\s+(\S+)", line)
        if not m or "src/" not in m.group(2):
            continue
        name = re.sub(r"^.*?(src/)", r"\1", m.group(2))  # one name per function
        d[name] = max(d.get(name, 0), int(m.group(1).replace(",", "")))
    return d
idle, loaded, n = read(sys.argv[1]), read(sys.argv[2]), int(sys.argv[3])
rows = sorted(((v - idle.get(k, 0)) / n, k) for k, v in loaded.items())
for per, name in reversed(rows[-25:]):
    print("%10d  %s" % (per, name))
PY
