"""fakebase.py - what the fake servers share: exact request recording,
scripted replies and faults, the control routes, and a threaded server on
127.0.0.1 only.  fake_scalekit.py and fake_x.py add their own routes.

A script entry (POST /__sandbox/script) answers the next matching requests:
  {"path": "/x", "method": "POST", "times": 1, "status": 200, "headers": {...},
   "json": ... | "body": "...", "delay": 0.5, "drop": false, "truncate": false}
"drop" hangs up without answering; "truncate" promises more bytes than it
sends, then hangs up mid-body; "gzip": true sends the body gzip-compressed
(Content-Encoding: gzip); "drip": {"chunk": "x", "every": 0.05,
"for": 30} sends the status and headers, then `chunk` every `every` seconds
(chunked encoding) until the client leaves or `for` seconds have passed.
"""
import gzip
import json
import socket
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

MAX_BODY = 64 << 20
RECORD_BODY = 64 << 10      # bytes of each request body kept in the record


class FakeState:
    """Recorded requests and queued scripts; subclasses add their own state."""

    def __init__(self):
        self.lock = threading.RLock()
        self.reset()

    def reset(self):
        self.requests, self.scripts = [], []


class FakeHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    STATE = None                 # a FakeState, set by the subclass

    def log_message(self, fmt, *args):  # quiet
        pass

    def setup(self):
        super().setup()
        # Headers and body go out in separate writes: without this, Nagle's
        # algorithm and delayed ACKs add ~40 ms to every response.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send(self, status, obj=None, body=None, headers=None, ctype="application/json"):
        if body is None:
            body = b"" if obj is None else json.dumps(obj).encode()
        elif isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        hdrs = {"Content-Type": ctype} if obj is not None else {}
        hdrs.update(headers or {})
        for k, v in hdrs.items():
            for item in v if isinstance(v, list) else [v]:   # a list: the header repeated
                self.send_header(k, str(item))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def handle_any(self):
        url = urlsplit(self.path)
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if 0 < n <= MAX_BODY else b""
        if url.path.startswith("/__sandbox/"):
            return self.control(url.path, json.loads(raw) if raw else {})
        rec = {"t": time.time(), "method": self.command, "path": url.path, "query": url.query,
               "connection": "%s:%d" % self.client_address[:2],   # one value per TCP connection
               "headers": [[k, v] for k, v in self.headers.items()],
               "body": raw[:RECORD_BODY].decode("utf-8", "replace"), "body_length": len(raw),
               "violations": []}
        with self.STATE.lock:
            self.STATE.requests.append(rec)
            script = self.take_script(url.path, raw)
        if script is not None:
            return self.play(script)
        try:
            self.route(url, raw, rec)
        except Exception as exc:  # a bug in the fake must not hang the client
            self.send(500, {"title": "fake server error", "message": "fake server error: %r" % exc,
                            "code": 13})

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = handle_any

    def route(self, url, raw, rec):
        raise NotImplementedError

    def take_script(self, path, raw=b""):
        # a script answers the first request to its path (and method) whose
        # body holds its "match" string, if it has one
        for i, s in enumerate(self.STATE.scripts):
            if (s.get("path", path) == path and s.get("method", self.command) == self.command
                    and s.get("match", "") in raw.decode("utf-8", "replace")):
                s["times"] = s.get("times", 1) - 1
                if s["times"] <= 0:
                    self.STATE.scripts.pop(i)
                return dict(s)
        return None

    def play(self, s):
        if s.get("delay"):
            time.sleep(float(s["delay"]))
        if s.get("drop"):
            self.close_connection = True
            return
        if s.get("drip"):
            return self.drip(s)
        if s.get("truncate"):
            body = json.dumps(s.get("json", {})).encode()
            self.send_response(s.get("status", 200))
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body) + 100))
            self.end_headers()
            self.wfile.write(body)
            self.close_connection = True
            return
        if s.get("gzip"):
            body = json.dumps(s["json"]).encode() if "json" in s else s.get("body", "").encode()
            headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
            headers.update(s.get("headers") or {})
            return self.send(s.get("status", 200), body=gzip.compress(body), headers=headers)
        if "json" in s:
            return self.send(s.get("status", 200), s["json"], headers=s.get("headers"))
        self.send(s.get("status", 200), body=s.get("body", ""), headers=s.get("headers"))

    def drip(self, s):
        d = s["drip"]
        chunk = d.get("chunk", "x").encode()
        self.send_response(s.get("status", 200))
        for k, v in (s.get("headers") or {"Content-Type": "application/json"}).items():
            self.send_header(k, str(v))
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        end = time.time() + float(d.get("for", 30))
        try:
            while time.time() < end:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
                time.sleep(float(d.get("every", 0.05)))
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.close_connection = True

    def control(self, path, arg):
        """The shared control routes; `extra_control` handles the others."""
        S = self.STATE
        with S.lock:
            if path == "/__sandbox/requests":
                return self.send(200, S.requests)
            if path == "/__sandbox/clear":
                S.requests, S.scripts = [], []
            elif path == "/__sandbox/reset":
                S.reset()
            elif path == "/__sandbox/script":
                S.scripts.append(arg)
            elif path == "/__sandbox/shutdown":
                self.send(200, {})
                threading.Thread(target=self.server.shutdown, daemon=True).start()
                return
            else:
                answer = self.extra_control(path, arg)
                if answer is None:
                    return self.send(404, {"message": "no such control route"})
                return self.send(200, answer)
        self.send(200, {})

    def extra_control(self, path, arg):
        """Return a JSON answer for a server-specific control route, or None."""
        return None


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128   # the default 5 drops SYNs when many clients connect at once

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client hanging up is normal
            super().handle_error(request, client_address)


def serve(handler, port=0, tls_cert=None, tls_key=None):
    """Listen on 127.0.0.1:port (0: any free port), print "PORT <n>", serve."""
    server = Server(("127.0.0.1", port), handler)
    if tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(tls_cert, tls_key)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    print("PORT %d" % server.server_address[1], flush=True)
    try:
        server.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    server.server_close()
