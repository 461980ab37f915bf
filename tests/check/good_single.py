"""A correct single-client chat server (server1): one session at a time; while it
lasts, anyone else gets `ERR busy` at once.  python3 good_single.py HOST PORT [stuck]
  stuck   FAULTY: the seat is never freed, so after the first client nobody is served"""
import socket
import sys
import threading

busy = threading.Event()
stuck = sys.argv[3:] == ["stuck"]


def serve(conn):
    buf, greeted = b"", False
    try:
        while True:
            data = conn.recv(4096)
            if not data:
                return
            buf += data
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                text = line.rstrip(b"\r").decode("utf-8", "replace")
                if text.lower() in ("bye", "exit"):
                    conn.sendall(b"bye\n")
                    return
                if not greeted and text.lower() == "hi":
                    conn.sendall(b"Hello\n")
                else:
                    print(text, flush=True)
                greeted = True
    except OSError:
        pass
    finally:
        conn.close()
        if not stuck:  # with the bug, the seat stays taken
            busy.clear()


server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind((sys.argv[1], int(sys.argv[2])))
server.listen(128)
while True:
    conn, _ = server.accept()
    if busy.is_set():
        try:
            conn.sendall(b"ERR busy: serving another client\n")
        except OSError:
            pass
        conn.close()
        continue
    busy.set()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
