"""FAULTY (echo not byte-exact), as server4: frames by line, one thread per client,
but decodes, strips and re-encodes each line, so `\\r`, tabs at the ends and bytes
that are not UTF-8 come back changed."""
import socket
import sys
import threading


def serve(conn):
    buf = b""
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
                text = line.decode("utf-8", "replace").strip()  # BUG: not the bytes received
                try:
                    if text.lower() in ("bye", "exit"):
                        conn.sendall(b"bye\n")
                        return
                    conn.sendall(text.encode() + b"\n")
                except OSError:
                    return


server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind((sys.argv[1], int(sys.argv[2])))
server.listen(128)
while True:
    conn, _ = server.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
