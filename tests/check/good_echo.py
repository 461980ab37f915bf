"""A correct select-style echo server (server4): non-blocking sockets, a per-client
output buffer, no reading from a client whose buffer is full.
python3 good_echo.py HOST PORT"""
import selectors
import socket
import sys

FULL = 256 * 1024
sel = selectors.DefaultSelector()
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind((sys.argv[1], int(sys.argv[2])))
server.listen(128)
server.setblocking(False)
sel.register(server, selectors.EVENT_READ)
clients = {}  # socket -> {"in": bytes, "out": bytes, "closing": bool}


def drop(sock):
    sel.unregister(sock)
    sock.close()
    del clients[sock]


def interest(sock, c):
    events = 0 if len(c["out"]) >= FULL or c["closing"] else selectors.EVENT_READ
    if c["out"]:
        events |= selectors.EVENT_WRITE
    if events == 0:
        events = selectors.EVENT_WRITE
    sel.modify(sock, events)


while True:
    for key, events in sel.select():
        sock = key.fileobj
        if sock is server:
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            conn.setblocking(False)
            clients[conn] = {"in": b"", "out": b"", "closing": False}
            sel.register(conn, selectors.EVENT_READ)
            continue
        c = clients[sock]
        if events & selectors.EVENT_READ:
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                data = None
            except OSError:
                drop(sock)
                continue
            if data == b"":
                drop(sock)
                continue
            if data:
                c["in"] += data
                while b"\n" in c["in"] and not c["closing"]:
                    line, c["in"] = c["in"].split(b"\n", 1)
                    if line.rstrip(b"\r").lower() in (b"bye", b"exit"):
                        c["out"] += b"bye\n"
                        c["closing"] = True
                    else:
                        c["out"] += line + b"\n"
        if c["out"]:
            try:
                sent = sock.send(c["out"])
                c["out"] = c["out"][sent:]
            except BlockingIOError:
                pass
            except OSError:
                drop(sock)
                continue
        if c["closing"] and not c["out"]:
            drop(sock)
            continue
        interest(sock, c)
