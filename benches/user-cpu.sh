#!/usr/bin/env bash
# User CPU per line, counted two ways over the same interval: /proc's ticks and
# perf's samples at 10 kHz.
#
#   cargo build --release --bins && benches/user-cpu.sh [RUNS] [COMPARE ARGS...]
#   OTHER=/tmp/server-before benches/user-cpu.sh 3 -w pingpong -c 50 -d 3
#
# /proc splits a process's CPU time into user and system by 10 ms ticks. In a
# 3 s pipelined echo row a server spends 20-30 of its ticks in user space, so
# the user figure moves by a fifth from round to round: server3 and server4,
# one program, differ by up to 40% in one compare run. perf's cpu-clock
# sampler at 10 kHz takes a hundred times as many samples.
#
# Each run starts tokio's echo (row `tokio`: compare's `baseline-async`), the
# event loop in echo mode (row `ours`: what `server4` and `server3 --mode echo`
# run) and, if OTHER names a second `server` binary (an older build, row
# `other`), that too; drives them in one `compare --attach` run (RUNS runs,
# default 3; compare's arguments default to `-w pipelined --pipelined-clients
# 50 -d 3`) under one system-wide `perf record`; and divides each server's user
# time by the lines it answered, by both counts. A server's samples are those
# of its threads, user time being its own code and libc's. Both counts include
# compare's warm-up, whose lines are not counted: every row reads high by about
# the same share, so compare the rows with each other, not with compare's table.
# (`perf record -p` per server was tried first: it saw a quarter less of tokio's
# CPU than /proc did, and read tokio's user time per line 20-40% higher.)
# Linux, as root or with perf_event_paranoid <= 0, with perf installed.
set -u
BIN=${BIN:-target/release}
RUNS=${1:-3}
shift $(($# > 0 ? 1 : 0))
ARGS=("$@")
[ ${#ARGS[@]} -gt 0 ] || ARGS=(-w pipelined --pipelined-clients 50 -d 3)
command -v perf >/dev/null || { echo "user-cpu.sh: perf is not installed" >&2; exit 1; }
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$WORK"' EXIT

declare -A PIDS ADDRS
# start NAME CMD...: runs a server on a free port; sets PIDS[NAME], ADDRS[NAME].
start() {
    local name=$1
    shift
    "$@" >"$WORK/$name.out" 2>/dev/null </dev/null &
    PIDS[$name]=$!
    for _ in $(seq 100); do
        grep -q '^listening on ' "$WORK/$name.out" && break
        sleep 0.05
    done
    ADDRS[$name]=$(sed -n 's/^listening on //p' "$WORK/$name.out")
    [ -n "${ADDRS[$name]}" ] || { echo "user-cpu.sh: $name did not start: $*" >&2; exit 1; }
}
# ticks PID: its user and system ticks so far.
ticks() { awk '{ print $14, $15 }' "/proc/$1/stat"; }

for run in $(seq "$RUNS"); do
    NAMES=(tokio ours)
    start tokio "$BIN/compare" --serve-baseline-async 127.0.0.1:0
    start ours "$BIN/server" --model event-loop --mode echo 127.0.0.1 0
    if [ -n "${OTHER:-}" ]; then
        NAMES+=(other)
        start other "$OTHER" --model event-loop --mode echo 127.0.0.1 0
    fi
    attach=()
    for name in "${NAMES[@]}"; do
        attach+=(--attach "$name=${ADDRS[$name]}")
        ticks "${PIDS[$name]}" >"$WORK/$name.before"
    done
    perf record -q -a -e cpu-clock -F 10000 -o "$WORK/perf.data" 2>/dev/null &
    sampler=$!
    "$BIN/compare" -q --no-html -m echo -s baseline "${attach[@]}" --repeat 1 \
        --json "$WORK/run.json" "${ARGS[@]}" >"$WORK/run.txt" 2>&1 ||
        { cat "$WORK/run.txt" >&2; exit 1; }
    kill -INT "$sampler"
    wait "$sampler" 2>/dev/null
    for name in "${NAMES[@]}"; do
        pid=${PIDS[$name]}
        echo "$name $(cat "$WORK/$name.before") $(ticks "$pid") $(ls "/proc/$pid/task")" |
            tr '\n' ' '
        echo
        kill "$pid"
        wait "$pid" 2>/dev/null
    done >"$WORK/servers"
    perf report -i "$WORK/perf.data" --no-children --stdio --sort pid,dso -n 2>/dev/null \
        >"$WORK/samples"
    python3 - "$WORK" "$run" <<'PY'
import json, re, sys
work, run = sys.argv[1], sys.argv[2]
answered = {r["strategy"]: r["messages"] for r in json.load(open(f"{work}/run.json"))["rows"]}
cells = []
for line in open(f"{work}/servers"):
    name, user0, sys0, user1, sys1, *threads = line.split()
    user_ticks, all_ticks = int(user1) - int(user0), int(user1) + int(sys1) - int(user0) - int(sys0)
    samples = {"user": 0, "all": 0}
    for row in open(f"{work}/samples"):
        m = re.match(r"\s*[\d.]+%\s+(\d+)\s+(\d+):\S*\s+(\S+)", row)
        if m and m.group(2) in threads:
            samples["all"] += int(m.group(1))
            samples["user"] += 0 if "kernel" in m.group(3) else int(m.group(1))
    lines = answered.get(name) or 0
    if lines and all_ticks and samples["all"]:
        cells.append(
            f"{name} {lines / 1e6:.2f}M lines, user per line: /proc {user_ticks * 1e7 / lines:.1f} ns "
            f"({user_ticks} of {all_ticks} ticks), perf {samples['user'] * 1e5 / lines:.1f} ns "
            f"({samples['user']} of {samples['all']} samples)"
        )
print(f"run {run}: " + " | ".join(cells))
PY
done
