"""FAULTY (blocking sendall in a select loop), as server4: frames by line and echoes,
but replies with a blocking sendall(), so one client that never reads its replies
stalls every other client."""
import select
import socket
import sys

server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind((sys.argv[1], int(sys.argv[2])))
server.listen(128)
socks, bufs = [server], {}


def drop(s):
    socks.remove(s)
    del bufs[s]
    s.close()


while True:
    readable, _, _ = select.select(socks, [], [])
    for s in readable:
        if s is server:
            conn, _ = server.accept()
            socks.append(conn)
            bufs[conn] = b""
            continue
        if s not in bufs:
            continue
        try:
            data = s.recv(4096)
        except OSError:
            data = b""
        if not data:
            drop(s)
            continue
        bufs[s] += data
        while s in bufs and b"\n" in bufs[s]:
            line, bufs[s] = bufs[s].split(b"\n", 1)
            try:
                if line.rstrip(b"\r").lower() in (b"bye", b"exit"):
                    s.sendall(b"bye\n")
                    drop(s)
                else:
                    s.sendall(line + b"\n")  # BUG: blocks while this client is not reading
            except OSError:
                drop(s)
