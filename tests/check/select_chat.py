"""A select-style chat server (server3): one thread, one select() over the listener,
every client and the console's stdin; non-blocking sockets with an output buffer per
client (a client whose buffer passes FULL is dropped). Each client's line is printed
as `[ID] text`; at the console a plain line goes to the client who spoke last,
`@ID text` to one, `@all text` to all, `/list`, `/kick ID`, `/quit`.
Correct unless started with one of the bugs it demonstrates:
  python3 select_chat.py HOST PORT [BUG]
  spin               a client that closes stays in the read set: 100% CPU from then on
  die-on-reset       an error on one client's recv() ends the whole server
  echo               each line goes back to its client, never to the operator
  blocking-operator  operator lines are sent with a blocking sendall() from the loop"""
import os
import select
import socket
import sys

FULL = 256 * 1024
bug = sys.argv[3] if len(sys.argv) > 3 else ""
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind((sys.argv[1], int(sys.argv[2])))
server.listen(128)
server.setblocking(False)
STDIN = sys.stdin.fileno()
console_open, console_buf = True, b""
clients = {}  # socket -> {"id", "in", "out", "greeted", "closing", "peer"}
by_id, last, next_id = {}, None, 1
spinning = []  # with the spin bug: closed sockets never taken out of the read set


def drop(s):
    c = clients.pop(s)
    by_id.pop(c["id"], None)
    s.close()


def send(s, data, operator=False):
    c = clients[s]
    if operator and bug == "blocking-operator":
        s.setblocking(True)
        s.sendall(data)  # BUG: waits for a client that may never read
        s.setblocking(False)
        return
    c["out"] += data
    if len(c["out"]) > FULL:
        print("[%d] dropped: not reading" % c["id"], file=sys.stderr, flush=True)
        drop(s)


def operator(line):
    if line.startswith("@"):
        target, _, text = line[1:].partition(" ")
        if target == "all":
            chosen = list(by_id.values())
        else:
            chosen = [by_id[int(target)]] if target.isdigit() and int(target) in by_id else []
        for s in chosen:
            if s in clients:
                send(s, (text + "\n").encode(), operator=True)
    elif line == "/list":
        print("%d client(s) connected" % len(by_id), flush=True)
        for cid, s in by_id.items():
            print("[%d] %s" % (cid, clients[s]["peer"]), flush=True)
    elif line.startswith("/kick "):
        s = by_id.get(int(line[6:])) if line[6:].strip().isdigit() else None
        if s:
            send(s, b"ERR kicked by the operator\n")
            clients[s]["closing"] = True
    elif line == "/quit":
        for s in list(clients):
            try:
                s.setblocking(True)
                s.settimeout(0.5)
                s.sendall(clients[s]["out"] + b"ERR server shutting down\n")
            except OSError:
                pass
        sys.stdout.flush()
        os._exit(0)
    elif line:
        s = by_id.get(last)
        if s:
            send(s, (line + "\n").encode(), operator=True)
        else:
            print("nobody to answer: use @ID text", flush=True)


def heard(s, line):
    global last
    c = clients[s]
    text = line.rstrip(b"\r").decode("utf-8", "replace")
    if text.lower() in ("bye", "exit"):
        send(s, b"bye\n")
        c["closing"] = True
    elif not c["greeted"] and text.lower() == "hi":
        send(s, b"Hello\n")
    elif bug == "echo":
        send(s, line + b"\n")  # BUG: the operator never sees it
    else:
        last = c["id"]
        print("[%d] %s" % (c["id"], text), flush=True)
    c["greeted"] = True


while True:
    readers = [server] + [s for s, c in clients.items() if not c["closing"]]
    if bug == "spin":
        readers += spinning
    if console_open:
        readers.append(STDIN)
    writers = [s for s, c in clients.items() if c["out"] or c["closing"]]
    readable, writable, _ = select.select(readers, writers, [])
    for s in readable:
        if s is server:
            try:
                conn, peer = server.accept()
            except OSError:
                continue
            conn.setblocking(False)
            clients[conn] = {"id": next_id, "in": b"", "out": b"", "greeted": False,
                             "closing": False, "peer": "%s:%d" % peer[:2]}
            by_id[next_id] = conn
            next_id += 1
        elif s == STDIN:
            data = os.read(STDIN, 65536)
            if not data:
                console_open = False  # end of input: keep serving
            console_buf += data
            while b"\n" in console_buf:
                line, console_buf = console_buf.split(b"\n", 1)
                operator(line.rstrip(b"\r").decode("utf-8", "replace"))
        elif s in clients:
            if bug == "die-on-reset":
                data = s.recv(4096)  # BUG: ConnectionResetError ends the server
            else:
                try:
                    data = s.recv(4096)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
            if not data:
                if bug == "spin":
                    spinning.append(s)  # BUG: still in the read set, readable forever
                    by_id.pop(clients.pop(s)["id"], None)
                else:
                    drop(s)
                continue
            c = clients[s]
            c["in"] += data
            while s in clients and b"\n" in c["in"] and not c["closing"]:
                line, c["in"] = c["in"].split(b"\n", 1)
                heard(s, line)
    for s in writable:
        if s not in clients:
            continue
        c = clients[s]
        try:
            sent = s.send(c["out"])
            c["out"] = c["out"][sent:]
        except BlockingIOError:
            pass
        except OSError:
            drop(s)
            continue
        if c["closing"] and not c["out"]:
            drop(s)
