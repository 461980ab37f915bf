"""The operator console the Python chat fixtures share (SPEC section 7), written as a
careful student would: each client's line is printed as `[ID] text`; at the console
a plain line goes to the client who spoke last, `@ID text` to one, `@all text` to
all, `/list` shows the clients, `/kick ID` closes one, `/quit` ends the server.

Lines for a client wait in a bounded queue and are sent by that client's own writer
thread, so a client that never reads blocks nobody: when its queue is full it is
dropped. With blocking=True the console sends with a blocking sendall() instead:
the classic bug that freezes the console at the first client that stops reading."""
import os
import queue
import socket
import sys
import threading

QUEUE = 256  # lines waiting for one client before it is dropped


class Client:
    def __init__(self, room, cid, conn):
        self.room, self.id, self.conn = room, cid, conn
        try:
            self.peer = "%s:%d" % conn.getpeername()[:2]
        except OSError:
            self.peer = "?"
        self.out = queue.Queue(QUEUE)
        threading.Thread(target=self._write, daemon=True).start()

    def send(self, data):
        """Queues bytes for this client; never blocks (unless the room is buggy)."""
        if self.room.blocking:
            try:
                self.conn.sendall(data)  # BUG (with blocking=True): waits on the client
            except OSError:
                pass
            return
        try:
            self.out.put_nowait(data)
        except queue.Full:
            print("[%d] dropped: not reading" % self.id, file=sys.stderr, flush=True)
            self.kick()

    def finish(self):
        """Sends what is queued, then closes the socket."""
        try:
            self.out.put_nowait(None)
        except queue.Full:
            self.kick()

    def kick(self):
        """Forgets the client and closes its socket at once."""
        self.room.leave(self)
        try:
            self.conn.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _write(self):
        try:
            while True:
                data = self.out.get()
                if data is None:
                    return
                self.conn.sendall(data)
        except OSError:
            pass
        finally:
            # shutdown() first: a close() alone sends nothing while the reader
            # thread still sits in recv() on this socket.
            try:
                self.conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.conn.close()


class Room:
    def __init__(self, blocking=False):
        self.blocking = blocking
        self.lock = threading.Lock()
        self.clients, self.last, self.next_id = {}, None, 1

    def join(self, conn):
        with self.lock:
            client = Client(self, self.next_id, conn)
            self.clients[client.id] = client
            self.next_id += 1
        return client

    def leave(self, client):
        with self.lock:
            self.clients.pop(client.id, None)

    def heard(self, client, text):
        self.last = client.id
        print("[%d] %s" % (client.id, text), flush=True)

    def console(self):
        """Reads operator lines on a thread of its own; end of input stops only that."""
        threading.Thread(target=self._read_console, daemon=True).start()

    def _read_console(self):
        for line in sys.stdin:
            self.operator(line.rstrip("\r\n"))

    def operator(self, line):
        with self.lock:
            clients = dict(self.clients)
        if line.startswith("@"):
            target, _, text = line[1:].partition(" ")
            if target == "all":
                chosen = list(clients.values())
            else:
                chosen = [clients[int(target)]] if target.isdigit() and int(target) in clients else []
                if not chosen:
                    print("no client %s" % target, flush=True)
            for client in chosen:
                client.send((text + "\n").encode())
        elif line == "/list":
            print("%d client(s) connected" % len(clients), flush=True)
            for client in clients.values():
                print("[%d] %s" % (client.id, client.peer), flush=True)
        elif line.startswith("/kick "):
            client = clients.get(int(line[6:])) if line[6:].strip().isdigit() else None
            if client:
                client.send(b"ERR kicked by the operator\n")
                self.leave(client)
                client.finish()
        elif line == "/quit":
            for client in clients.values():
                try:
                    client.conn.settimeout(0.5)
                    client.conn.sendall(b"ERR server shutting down\n")
                except OSError:
                    pass
            sys.stdout.flush()
            os._exit(0)
        elif line:
            client = clients.get(self.last)
            if client:
                client.send((line + "\n").encode())
            else:
                print("nobody to answer: use @ID text", flush=True)
