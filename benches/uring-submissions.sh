#!/usr/bin/env bash
# Submissions per message of `server --model io-uring` at pipelined x32,
# counted by the kernel itself (the io_uring:io_uring_submit_req tracepoint).
#
#   benches/uring-submissions.sh target/release/server            # multishot
#   SWITCHBOARD_IO_URING_SINGLE_SHOT=1 benches/uring-submissions.sh target/release/server
#
# Needs Linux, perf with tracepoint access, python3. Ten clients each write 32
# 64-byte lines at once and read the 32 echoes, 3,000 times: an exact count of
# messages (960,000), whatever the machine's speed.
set -euo pipefail
server=${1:?usage: $0 SERVER_BINARY}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
perf stat -e io_uring:io_uring_submit_req -x, -o "$work/perf" \
    "$server" --model io-uring 127.0.0.1 0 --mode echo -q >"$work/listen" 2>/dev/null &
perf_pid=$!
for _ in $(seq 100); do
    grep -q listening "$work/listen" 2>/dev/null && break
    sleep 0.1
done
port=$(head -1 "$work/listen" | sed 's/.*://')
messages=$(python3 - "$port" <<'PY'
import socket, sys
port, rounds = int(sys.argv[1]), 3000
batch = (b"x" * 64 + b"\n") * 32
clients = []
for _ in range(10):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    clients.append(s)
for _ in range(rounds):
    for s in clients:
        s.sendall(batch)
    for s in clients:
        got = 0
        while got < len(batch):
            got += len(s.recv(65536))
print(10 * 32 * rounds)
PY
)
kill -INT "$(pgrep -P "$perf_pid")"
wait "$perf_pid" || true
submissions=$(grep submit_req "$work/perf" | cut -d, -f1)
echo "messages=$messages submissions=$submissions per_message=$(python3 -c "print(round($submissions / $messages, 4))")"
