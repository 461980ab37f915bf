"""FAULTY (SIGTERM ignored), as server2: otherwise correct.
  python3 sigterm_ignored.py HOST PORT [int]   with `int`, Ctrl-C (SIGINT) is ignored instead"""
import socket
import sys
import signal
import threading

ignored = signal.SIGINT if sys.argv[3:] == ["int"] else signal.SIGTERM
signal.signal(ignored, signal.SIG_IGN)  # BUG


def serve(conn):
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
                        print(text, flush=True)
                except OSError:
                    return
                greeted = True


server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind((sys.argv[1], int(sys.argv[2])))
server.listen(128)
while True:
    conn, _ = server.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
