#!/usr/bin/env python3
"""Black-box probes of the contract's bounds (SPEC section 8), per model.

Run from the repository root after `cargo build --release`:

    python3 benches/contract-probe.py [MODEL ...]

For each model, as a user of `server --model MODEL --mode echo` sees it:

- delivery: a client keeps sending lines to echo (and reads everything)
  while the operator types 300 numbered `@1 op-N` lines at the console;
  counts how many arrive, and whether in order;
- flood: a client with a 4 KiB receive buffer never reads, while the
  operator types `@all` with 50,000 lines of 1 KiB; reports the server's
  peak RSS growth (VmHWM), whether the non-reader was closed, and how long
  a new client then waits for its `Hello`;
- console: stdout is a pipe nobody reads, and a chat client sends 64 KiB
  lines of control characters; reports the peak RSS growth.

Linux only (it reads /proc). Loopback only; every wait has a deadline.
"""
import os
import socket
import subprocess
import sys
import threading
import time

SERVER = "target/release/server"
MODELS = [
    "single-client", "thread-per-client", "thread-pool", "event-loop",
    "event-loop-workers", "multi-reactor", "async", "io-uring",
]


def kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def start(model, mode, stdout=subprocess.PIPE):
    p = subprocess.Popen(
        [SERVER, "--model", model, "--mode", mode, "127.0.0.1", "0", "-q"],
        stdin=subprocess.PIPE, stdout=stdout, stderr=subprocess.DEVNULL)
    if stdout == subprocess.PIPE:
        first = p.stdout.readline().decode()
    else:
        first = None
    return p, first


def port_of(first):
    return int(first.strip().rsplit(":", 1)[1])


def connect(port, rcvbuf=None):
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    return s


def drain_stdout(p):
    threading.Thread(target=lambda: p.stdout.read(), daemon=True).start()


def delivery(model):
    p, first = start(model, "echo")
    drain_stdout(p)
    c = connect(port_of(first))
    time.sleep(0.2)  # let a blocking model admit the client
    stop = threading.Event()
    seen = []

    def chatter():
        try:
            while not stop.is_set():
                c.sendall(b"x\n" * 50)
        except OSError:
            pass

    def reader():
        buf = b""
        deadline = time.time() + 20
        while len(seen) < 300 and time.time() < deadline:
            try:
                chunk = c.recv(65536)
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
            *lines, buf = buf.split(b"\n")
            seen.extend(int(l[3:]) for l in lines if l.startswith(b"op-"))
    reading = threading.Thread(target=reader)
    reading.start()
    threading.Thread(target=chatter, daemon=True).start()
    for n in range(300):
        p.stdin.write(f"@1 op-{n}\n".encode())
        p.stdin.flush()
        time.sleep(0.002)
    reading.join()
    stop.set()
    p.kill()
    return f"{len(seen)}/300 {'in order' if seen == sorted(seen) else 'OUT OF ORDER'}"


def flood(model):
    p, first = start(model, "echo")
    drain_stdout(p)
    port = port_of(first)
    stalled = connect(port, rcvbuf=4096)
    time.sleep(0.2)
    before = kib(p.pid, "VmHWM")
    line = b"@all " + b"m" * 1023 + b"\n"
    try:
        for _ in range(50_000):
            p.stdin.write(line)
        p.stdin.flush()
    except BrokenPipeError:
        pass
    time.sleep(0.5)
    grown = kib(p.pid, "VmHWM") - before
    began = time.time()
    fresh = connect(port)
    fresh.sendall(b"Hi\n")
    hello = fresh.recv(100)
    waited = time.time() - began
    closed = False
    total = 0
    try:
        while True:
            chunk = stalled.recv(1 << 16)
            if not chunk:
                closed = True
                break
            total += len(chunk)
    except OSError:
        closed = True
    p.kill()
    return (f"peak RSS +{grown / 1024:.1f} MiB, non-reader "
            f"{'closed' if closed else 'OPEN'} after {total // 1024} KiB, "
            f"new client greeted in {waited * 1000:.0f} ms ({hello!r})")


def console(model):
    r, w = os.pipe()  # nobody reads r
    p, _ = start(model, "chat", stdout=w)
    time.sleep(0.5)
    port = None
    for _ in range(50):
        # the listening line is in the pipe: read it without draining the rest
        data = os.read(r, 64).decode()
        port = int(data.split("listening on ")[1].split("\n")[0].rsplit(":", 1)[1])
        break
    c = connect(port)
    before = kib(p.pid, "VmHWM")
    line = b"\x01" * 65535 + b"\n"
    try:
        for _ in range(2000):
            c.sendall(line)
    except OSError:
        pass
    time.sleep(0.5)
    grown = kib(p.pid, "VmHWM") - before
    p.kill()
    os.close(r)
    os.close(w)
    return f"peak RSS +{grown / 1024:.1f} MiB after 2,000 lines of 64 KiB"


def main():
    models = sys.argv[1:] or MODELS
    for model in models:
        for probe in (delivery, flood, console):
            try:
                result = probe(model)
            except Exception as e:  # a probe that cannot run says why
                result = f"failed: {e!r}"
            print(f"{model:20} {probe.__name__:9} {result}", flush=True)


if __name__ == "__main__":
    main()
