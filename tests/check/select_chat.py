"""A select-style chat server (server3), correct unless started with one of the bugs
it demonstrates:  python3 select_chat.py HOST PORT [spin|die-on-reset]
  spin          a client that closes stays in the read set: 100% CPU from then on
  die-on-reset  an error on one client's recv() ends the whole server"""
import select
import socket
import sys

bug = sys.argv[3] if len(sys.argv) > 3 else ""
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind((sys.argv[1], int(sys.argv[2])))
server.listen(128)
socks, bufs, greeted = [server], {}, set()


def drop(s):
    socks.remove(s)
    del bufs[s]
    greeted.discard(s)
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
        if bug == "die-on-reset":
            data = s.recv(4096)  # BUG: ConnectionResetError ends the server
        else:
            try:
                data = s.recv(4096)
            except OSError:
                data = b""
        if not data:
            if bug != "spin":
                drop(s)
            continue  # with the bug: still in the read set, readable forever
        bufs[s] += data
        while s in bufs and b"\n" in bufs[s]:
            line, bufs[s] = bufs[s].split(b"\n", 1)
            text = line.rstrip(b"\r").decode("utf-8", "replace")
            try:
                if text.lower() in ("bye", "exit"):
                    s.sendall(b"bye\n")
                    drop(s)
                elif s not in greeted and text.lower() == "hi":
                    s.sendall(b"Hello\n")
                else:
                    print(text, flush=True)
            except OSError:
                drop(s)
            greeted.add(s)
