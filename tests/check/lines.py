"""The line server the calc and reverse fixtures share, written as a careful student
would: one thread per client, framing by line (never by recv size), `Hi` answered
`Hello` once, `bye` or `exit` answered `bye` and closed; every other line answered
with `answer(text)`, one line back."""
import socket
import sys
import threading


def serve(conn, answer):
    buf, greeted = b"", False
    with conn:
        while True:
            try:
                data = conn.recv(4096)
            except OSError:
                return
            if not data:
                return
            buf += data
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                text = line.rstrip(b"\r").decode("utf-8", "replace")
                try:
                    if text.lower() in ("bye", "exit"):
                        conn.sendall(b"bye\n")
                        return
                    if not greeted and text.lower() == "hi":
                        conn.sendall(b"Hello\n")
                    else:
                        conn.sendall(answer(text).encode() + b"\n")
                except OSError:
                    return
                greeted = True


def serve_forever(answer):
    """Listens on sys.argv[1]:sys.argv[2] and serves each client in a thread."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((sys.argv[1], int(sys.argv[2])))
    server.listen(128)
    while True:
        conn, _ = server.accept()
        threading.Thread(target=serve, args=(conn, answer), daemon=True).start()
