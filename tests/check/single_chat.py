"""A single-client chat server (server1) with an operator console (chatroom.py): one
session at a time; while it lasts, anyone else gets `ERR busy` at once.
Correct unless started with one of the bugs it demonstrates:
  python3 single_chat.py HOST PORT [BUG]
  stuck   the seat is never freed, so after the first client nobody is served
  hang    the session is served in the accept loop: a second client sits in the
          listen backlog, unanswered"""
import socket
import sys
import threading

from chatroom import Room  # chatroom.py, beside this file

bug = sys.argv[3] if len(sys.argv) > 3 else ""
room = Room()
busy = threading.Event()


def serve(conn):
    client = room.join(conn)
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
                    client.send(b"bye\n")
                    return
                if not greeted and text.lower() == "hi":
                    client.send(b"Hello\n")
                else:
                    room.heard(client, text)
                greeted = True
    except OSError:
        pass
    finally:
        room.leave(client)
        client.finish()
        if bug != "stuck":  # BUG (stuck): the seat stays taken
            busy.clear()


server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind((sys.argv[1], int(sys.argv[2])))
server.listen(128)
room.console()
while True:
    conn, _ = server.accept()
    if bug == "hang":
        serve(conn)  # BUG: nobody accepts (or refuses) while this one is served
        continue
    if busy.is_set():
        try:
            conn.sendall(b"ERR busy: serving another client\n")
        except OSError:
            pass
        conn.close()
        continue
    busy.set()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
