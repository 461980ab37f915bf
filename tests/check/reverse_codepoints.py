"""FAULTY (reverses code points, not graphemes), as server2 --mode reverse: `café`
written with a combining accent loses its accent to the wrong letter, a skin tone
leaves its thumb, and a flag's two letters swap into another flag."""
import socket
import sys
import threading


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
                        conn.sendall(text[::-1].encode() + b"\n")  # BUG: code points
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
