"""FAULTY (framing by recv size), as server2: each recv() is taken to be one whole
line, so a line split over packets, or two lines in one packet, go wrong."""
import socket
import sys
import threading


def serve(conn):
    with conn:
        while True:
            try:
                data = conn.recv(1024)
            except OSError:
                return
            if not data:
                return
            text = data.decode("utf-8", "replace").strip()  # BUG: one recv != one line
            try:
                if text.lower() == "bye":
                    conn.sendall(b"bye\n")
                    return
                if text.lower() == "hi":
                    conn.sendall(b"Hello\n")
                else:
                    print(text, flush=True)
            except OSError:
                return


server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind((sys.argv[1], int(sys.argv[2])))
server.listen(128)
while True:
    conn, _ = server.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
