"""A thread-per-client chat server (server2) with an operator console (chatroom.py),
correct unless started with one of the bugs it demonstrates:
  python3 threads_chat.py HOST PORT [BUG]
  recv-framing      each recv() is taken for one whole line
  serial            each client's thread is joined at once: one client at a time
  bye-left-open     `bye` is answered, the connection left open
  sigterm-ignored   SIGTERM is ignored
  sigint-ignored    Ctrl-C (SIGINT) is ignored
  strict-decode     bytes that are not UTF-8 kill the client's thread, its socket open
  leak              a client that leaves without bye keeps its socket open forever
  no-reuseaddr      no SO_REUSEADDR: a restart on the same port fails for a while
  no-newline        the greeting is sent without its line end
  deaf              the console (stdin) is never read
  blocking-console  the console sends with a blocking sendall(), so it freezes at the
                    first client that stops reading"""
import signal
import socket
import sys
import threading

from chatroom import Room  # chatroom.py, beside this file

bug = sys.argv[3] if len(sys.argv) > 3 else ""
room = Room(blocking=bug == "blocking-console")
if bug == "sigterm-ignored":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # BUG
if bug == "sigint-ignored":
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # BUG


def lines(conn):
    """Yields each line received; ends when the client leaves."""
    buf = b""
    while True:
        try:
            data = conn.recv(4096)
        except OSError:
            return
        if not data:
            return
        if bug == "recv-framing":
            yield data.strip()  # BUG: one recv() is not one line
            continue
        buf += data
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            yield line.rstrip(b"\r")


def serve(conn):
    client = room.join(conn)
    greeted = False
    for line in lines(conn):
        if bug == "strict-decode":
            text = line.decode()  # BUG: UnicodeDecodeError ends the thread, socket open
        else:
            text = line.decode("utf-8", "replace")
        if text.lower() in ("bye", "exit"):
            client.send(b"bye\n")
            if bug == "bye-left-open":
                continue  # BUG: should close
            room.leave(client)
            client.finish()
            return
        if not greeted and text.lower() == "hi":
            client.send(b"Hello" if bug == "no-newline" else b"Hello\n")
        else:
            room.heard(client, text)
        greeted = True
    if bug != "leak":  # BUG (leak): the client's socket is never closed
        room.leave(client)
        client.finish()


server = socket.socket()
if bug != "no-reuseaddr":
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind((sys.argv[1], int(sys.argv[2])))
server.listen(128)
if bug != "deaf":
    room.console()
while True:
    conn, _ = server.accept()
    worker = threading.Thread(target=serve, args=(conn,), daemon=True)
    worker.start()
    if bug == "serial":
        worker.join()  # BUG: waits for this client before accepting the next
