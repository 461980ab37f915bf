#!/usr/bin/env python3
"""System and user CPU per message of several servers, paired round by round.

    cargo build --release --bins && benches/c/build.sh
    benches/sys-per-msg.py --rounds 5 --also old \\
        'c-epoll=target/c/epoll_echo 127.0.0.1 {port}' \\
        'old=/tmp/old/server4 127.0.0.1 {port}' \\
        'ev-loop=target/release/server4 127.0.0.1 {port}' \\
        -- -w pingpong,pipelined -c 50,100 -d 4

compare's ratios are taken against its own baseline, and its table keeps one
run per row, so it cannot say "server4's system time over C's, median of five".
Names must differ from compare's built-in rows (`server4` is taken).
This script runs compare ROUNDS times (`--repeat 1`, `--json`), each time with
every server as an `--external` row, in alternating order (first to last, then
last to first), and divides each row's figure by the first server's from the
same round: a disturbance then moves one round's ratio, not the median.

Unless --no-pin is given (and on a machine of two or more CPUs), compare and its load
generator run on CPU 0 and every server on CPU 1 (`taskset`), so the scheduler
never puts the pair on one core for some rounds and on two for others. compare
insists on one built-in row, so its `baseline` runs too (on CPU 0 with the
generator when pinned: not a figure to quote); it is left out below.
--also NAME adds each row's ratios against a second server (an older build).
Linux only (taskset, /proc).
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--compare", default="target/release/compare")
    ap.add_argument("--no-pin", action="store_true", help="leave placement to the scheduler")
    ap.add_argument("--keep", help="directory for each round's JSON")
    ap.add_argument("--also", metavar="NAME",
                    help="a second reference (an older build, say): ratios against it too")
    ap.add_argument("servers", nargs="+", help="NAME=CMD with {port}; the first is the reference")
    args, rest = split_args(sys.argv[1:])
    opts = ap.parse_args(args)
    servers = [s.split("=", 1) for s in opts.servers]
    pin = not opts.no_pin and (os.cpu_count() or 1) >= 2 and shutil.which("taskset")
    keep = opts.keep or tempfile.mkdtemp(prefix="sys-per-msg-")
    os.makedirs(keep, exist_ok=True)

    # (name, workload label, clients) -> list of per-round rows
    runs = {}
    for r in range(opts.rounds):
        order = servers if r % 2 == 0 else servers[::-1]
        cmd = ["taskset", "-c", "0"] if pin else []
        cmd += [opts.compare, "-s", "baseline", "--no-html", "-q", "--repeat", "1"]
        for name, line in order:
            line = f"taskset -c 1 {line}" if pin else line
            cmd += ["--external", f"{name}={line}"]
        out = os.path.join(keep, f"round{r + 1}.json")
        cmd += ["--json", out] + rest
        print(f"round {r + 1}/{opts.rounds}: {' '.join(n for n, _ in order)}", file=sys.stderr)
        done = subprocess.run(cmd, stdout=subprocess.DEVNULL)
        if done.returncode not in (0, 1):
            sys.exit(f"compare exited {done.returncode}")
        with open(out) as f:
            doc = json.load(f)
        for row in doc["rows"]:
            if row["strategy"] == "baseline":
                continue
            key = (row["strategy"], label(row), row["clients"])
            runs.setdefault(key, []).append(row)

    ref = servers[0][0]
    print(f"pinned: {'compare on CPU 0, servers on CPU 1' if pin else 'no'}; "
          f"{opts.rounds} rounds; JSON in {keep}")
    print(f"{'row':28} {'sys/msg':>9} {'usr/msg':>9} {'msg/s':>9} {'other':>6}"
          f"   sys vs {ref} (median, low-high)   cpu vs {ref}")
    loads = sorted({(w, c) for (_, w, c) in runs})
    for w, c in loads:
        base = runs.get((ref, w, c), [])
        for name, _ in servers:
            rows = runs.get((name, w, c), [])
            if not rows:
                continue
            sys_us = med([r["cpu_sys_us_per_msg"] for r in rows])
            usr_us = med([r["cpu_user_us_per_msg"] for r in rows])
            rate = med([r["msgs_per_s"] for r in rows])
            other = med([r["other_load"] for r in rows])
            line = (f"{name + ' ' + w + ' ' + str(c):28} {fmt(sys_us, 'µs'):>9} "
                    f"{fmt(usr_us, 'µs'):>9} {fmt(rate and rate / 1e3, 'k'):>9} "
                    f"{fmt(other and other * 100, '%', 0):>6}")
            if name != ref:
                line += f"   {spread(rows, base, sys_of):24}   {spread(rows, base, cpu_of)}"
            also = runs.get((opts.also, w, c), [])
            if also and name not in (ref, opts.also):
                line += (f"\n{'':28} against {opts.also}: sys {spread(rows, also, sys_of)}"
                         f", cpu {spread(rows, also, cpu_of)}")
            print(line)
        print(f"  rounds, sys/msg µs: " + "; ".join(
            f"{n} " + " ".join(fmt(sys_of(r), "") for r in runs.get((n, w, c), []))
            for n, _ in servers))


def split_args(argv):
    if "--" in argv:
        i = argv.index("--")
        return argv[:i], argv[i + 1:]
    return argv, []


def label(row):
    return f"pipe-x{row['depth']}" if row["workload"] == "pipelined" else row["workload"]


def sys_of(row):
    return row.get("cpu_sys_us_per_msg")


def cpu_of(row):
    u, s = row.get("cpu_user_us_per_msg"), row.get("cpu_sys_us_per_msg")
    return None if u is None or s is None else u + s


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(v, unit, digits=2):
    return "n/a" if v is None else f"{v:.{digits}f}{unit}"


def spread(rows, base, figure):
    """Median, low and high of the per-round ratios row/base (round k with round k)."""
    ratios = [figure(a) / figure(b) for a, b in zip(rows, base)
              if figure(a) is not None and figure(b)]
    if not ratios:
        return "n/a"
    return f"{statistics.median(ratios):.3f}x ({min(ratios):.3f}-{max(ratios):.3f})"


if __name__ == "__main__":
    main()
