#!/usr/bin/env bash
# User CPU per line, counted two ways over the same interval: /proc's ticks and
# perf's samples.
#
#   cargo build --release --bins && benches/user-cpu.sh [RUNS] [COMPARE ARGS...]
#   OTHER=/tmp/server-before benches/user-cpu.sh 3 -w pingpong -c 50 -d 3
#
# /proc splits a process's CPU time into user and system by 10 ms ticks. In a
# 3 s pipelined echo row a server spends 20-30 of its ticks in user space, so
# the user figure moves by a fifth from round to round: server3 and server4,
# one program, differ by up to 40% in one compare run. perf's cpu-clock
# sampler at 1 kHz (FREQ) takes ten times as many samples. Not more: at 10 kHz
# the sampling itself slowed tokio's echo by 20-40% (6.4-8.9 million lines in
# 3 s, against 10.2-11.0 unwatched) and raised its user time per line with it,
# which flattered the event loop by 10-30%; at 1 kHz tokio's echo answers 9.7-10.1
# million.
#
# Each run starts tokio's echo (row `tokio`: compare's `baseline-async`), the
# event loop in echo mode (row `ours`: what `server4` and `server3 --mode echo`
# run) and, if OTHER names a second `server` binary (an older build, row
# `other`), that too; drives them in one `compare --attach` run (RUNS runs,
# default 3; compare's arguments default to `-w pipelined --pipelined-clients
# 50 -d 3`) under one system-wide `perf record`; and divides each server's user
# time (its own code and libc's; every thread of its process) by the lines it
# answered in all its rows, by both counts. Both include compare's warm-up,
# whose lines are not counted: every row reads high by about the same share, so
# compare the rows with each other, not with compare's table.
# Linux, as root or with perf_event_paranoid <= 0, with perf installed. KEEP=1
# keeps the recording and the run's files.
set -u
BIN=${BIN:-target/release}
RUNS=${1:-3}
shift $(($# > 0 ? 1 : 0))
ARGS=("$@")
[ ${#ARGS[@]} -gt 0 ] || ARGS=(-w pipelined --pipelined-clients 50 -d 3)
command -v perf >/dev/null || { echo "user-cpu.sh: perf is not installed" >&2; exit 1; }
WORK=$(mktemp -d)
[ -n "${KEEP:-}" ] && echo "keeping $WORK" >&2
trap 'kill $(jobs -p) 2>/dev/null; [ -n "${KEEP:-}" ] || rm -rf "$WORK"' EXIT

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
    # --strict-freq: fail rather than sample more slowly than asked.
    perf record -q -a --strict-freq -e cpu-clock -F "${FREQ:-1000}" -o "$WORK/perf.data" \
        2>"$WORK/perf.err" &
    sampler=$!
    sleep 0.5 # perf is sampling before the load starts
    kill -0 "$sampler" 2>/dev/null ||
        { echo "user-cpu.sh: perf record failed: $(cat "$WORK/perf.err")" >&2; exit 1; }
    "$BIN/compare" -q --no-html -m echo -s baseline "${attach[@]}" --repeat 1 \
        --json "$WORK/run.json" "${ARGS[@]}" >"$WORK/run.txt" 2>&1 ||
        { cat "$WORK/run.txt" >&2; exit 1; }
    kill -INT "$sampler"
    wait "$sampler" 2>/dev/null
    for name in "${NAMES[@]}"; do
        pid=${PIDS[$name]}
        echo "$name $pid $(cat "$WORK/$name.before") $(ticks "$pid")"
        kill "$pid"
        wait "$pid" 2>/dev/null
    done >"$WORK/servers"
    # Each sample with its process (every thread of it, those gone before the end
    # included), its CPU time in ns, and where it was spent.
    perf script -i "$WORK/perf.data" -F pid,period,ip,dso 2>/dev/null >"$WORK/samples"
    python3 - "$WORK" "$run" <<'PY'
import json, re, sys
work, run = sys.argv[1], sys.argv[2]
answered = {}
for row in json.load(open(f"{work}/run.json"))["rows"]:
    answered[row["strategy"]] = answered.get(row["strategy"], 0) + row["messages"]
# CPU time sampled, in ns, per process and by where it was spent: a name in
# brackets is the kernel or a kernel module, but for the kernel's pages mapped
# into processes.
user_ns, all_ns = {}, {}
for sample in open(f"{work}/samples"):
    m = re.match(r"\s*(\d+)\s+(\d+)\s+\S+\s+\((.*)\)\s*$", sample)
    if not m:
        continue
    pid, period, dso = m.group(1), int(m.group(2)), m.group(3)
    kernel = dso.startswith("[") and dso not in ("[vdso]", "[vsyscall]", "[unknown]")
    all_ns[pid] = all_ns.get(pid, 0) + period
    user_ns[pid] = user_ns.get(pid, 0) + (0 if kernel else period)
cells = []
for line in open(f"{work}/servers"):
    name, pid, user0, sys0, user1, sys1 = line.split()
    user_ticks, all_ticks = int(user1) - int(user0), int(user1) + int(sys1) - int(user0) - int(sys0)
    user, total = user_ns.get(pid, 0), all_ns.get(pid, 0)
    lines = answered.get(name) or 0
    if lines and all_ticks and total:
        cells.append(
            f"{name} {lines / 1e6:.2f}M lines, user per line: /proc {user_ticks * 1e7 / lines:.1f} ns "
            f"({user_ticks} of {all_ticks} ticks), perf {user / lines:.1f} ns "
            f"({user / 1e9:.2f} of {total / 1e9:.2f} s)"
        )
    else:
        cells.append(f"{name}: nothing counted ({lines} lines, {all_ticks} ticks, {total} ns sampled)")
print(f"run {run}: " + " | ".join(cells))
PY
done
