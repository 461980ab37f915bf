"""FAULTY (second client left hanging), as server1: serves one client at a time from
the accept loop, so a second client sits in the listen backlog, unanswered."""
import socket
import sys

server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind((sys.argv[1], int(sys.argv[2])))
server.listen(5)
while True:
    conn, _ = server.accept()  # BUG: nobody accepts (or refuses) while this one is served
    buf, greeted = b"", False
    with conn:
        try:
            while True:
                data = conn.recv(4096)
                if not data:
                    break
                buf += data
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    text = line.rstrip(b"\r").decode("utf-8", "replace")
                    if text.lower() == "bye":
                        conn.sendall(b"bye\n")
                        raise ConnectionAbortedError
                    if not greeted and text.lower() == "hi":
                        conn.sendall(b"Hello\n")
                    else:
                        print(text, flush=True)
                    greeted = True
        except OSError:
            pass
