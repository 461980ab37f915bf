#!/usr/bin/env bash
# What a 2-core machine cannot show: how the models with workers use more cores.
#
#   cargo build --release --bins && benches/many-cores.sh [OUT_DIR]
#
# Runs on a machine with 8 or more cores. Every figure is a same-run ratio, medians
# of `--repeat 3`; every run's JSON is kept in OUT_DIR (default target/many-cores).
#   1. async against event-loop, CPU per message (echo ping-pong, 50 and 500 clients),
#      with 2 and 4 runtime threads and 4 generator threads beside them;
#   2. event-loop-workers against event-loop under `-w heavy` (cheap clients' p99);
#   3. multi-reactor against event-loop and async as loops are added (500 clients,
#      8 generator threads): where one loop's core runs out.
#   4. io-uring against event-loop, system CPU per message (500 clients, pipelined).
set -u
BIN=${BIN:-target/release}
OUT=${1:-target/many-cores}
mkdir -p "$OUT"
echo "== $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2), kernel $(uname -r)"
ulimit -n 20000 2>/dev/null || true
compare() { "$BIN/compare" --bin-dir "$BIN" -q --repeat 3 "$@"; }

for w in 2 4; do
    echo "== 1. async ($w threads) against event-loop, echo ping-pong"
    compare -s baseline,event-loop,async -w pingpong -c 50,500 -d 2 --gen-threads 4 \
        --workers "$w" --json "$OUT/async-w$w.json"
done

echo "== 2. event-loop-workers against event-loop under -w heavy"
compare -s event-loop,event-loop-workers -w heavy -c 50 -d 2 --workers 8 \
    --json "$OUT/heavy.json"

for w in 1 2 4 8; do
    echo "== 3. multi-reactor with $w loops, 500 ping-pong clients"
    compare -s baseline,event-loop,multi-reactor,async -w pingpong -c 500 -d 2 \
        --gen-threads 8 --workers "$w" --json "$OUT/scale-w$w.json"
done

echo "== 4. io-uring against event-loop"
compare -s baseline,event-loop,io-uring -w pingpong,pipelined -c 500 -d 2 \
    --json "$OUT/uring.json"
