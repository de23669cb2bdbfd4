"""A fault-injecting HTTP proxy for tests: it sits between obstore and the local S3 server (moto).

Standard library only. Every request is matched against the rules, in the order they were added; the first
rule that fires decides what happens to it, and a request no rule fires for is forwarded as it came::

    with FaultProxy("http://127.0.0.1:5000", seed=7) as proxy:
        proxy.add(RESET, method="PUT", path=r"/log/", times=1)        # the next PUT of a log object: forwarded,
                                                                      # then the client's connection is reset
        proxy.add(UNAVAILABLE, method="PUT", probability=0.05)        # 5% of PUTs: 503, not forwarded
        db = schedy.SchedyDB(url, endpoint=proxy.url, client_options={"timeout": "2s"})

Actions (what the client sees, and whether the request reached the server):

``FORWARD``      forwarded, reply relayed (the default).
``RESET``        forwarded (the write lands), then the connection is reset instead of replying (ECONNRESET).
``CLOSE``        forwarded (the write lands), then the connection is closed without a reply (EOF).
``DELAY``        forwarded (the write lands), the reply is held for ``delay`` seconds (set it past the
                 client's timeout), then the connection is reset.
``UNAVAILABLE``  answered ``503 Service Unavailable`` (an S3 ``SlowDown`` error) without forwarding.
``REFUSE``       the connection is reset without forwarding: the request never reaches the server.
``STRIP_IF_NONE_MATCH``  forwarded without its ``If-None-Match`` header: a store that ignores put-if-absent.

``action`` may also be a tuple of actions: each time the rule fires, one of them is drawn. Setting
``proxy.ignore_conditions = True`` strips ``If-None-Match`` from every request it forwards, whatever the rules
do to their replies (a store that ignores put-if-absent, and loses replies too).

A rule matches on ``method`` (None: any) and ``path`` (a regular expression searched in the request target,
query included; None: any). It fires for the next ``times`` matching requests (None: no limit), each with
``probability`` (None: always), drawn from one ``random.Random(seed)`` so a run is reproducible as far as the
order of requests is. ``rule.fired`` counts its faults; ``proxy.counts`` counts every action taken (including
``"forward"``), ``proxy.requests`` lists ``(method, target, action)`` for every request, and ``proxy.replies``
lists ``(method, target, status, header bytes, body bytes)`` for every reply sent to the client (relayed or
made up; a reset or closed connection sends none).
"""

import http.client
import http.server
import random
import re
import socket
import struct
import threading
import time
from collections import Counter
from urllib.parse import urlparse

FORWARD = "forward"
RESET = "reset"
CLOSE = "close"
DELAY = "delay"
UNAVAILABLE = "503"
REFUSE = "refuse"
STRIP_IF_NONE_MATCH = "strip-if-none-match"
ACTIONS = (FORWARD, RESET, CLOSE, DELAY, UNAVAILABLE, REFUSE, STRIP_IF_NONE_MATCH)
LOST_REPLIES = (RESET, CLOSE, DELAY)  # the request reached the server, its reply never reached the client

_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "content-length",
}
_SLOW_DOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate (fault proxy).</Message></Error>"
)


class Rule:
    """One fault: which requests it applies to, how many times, with which probability."""

    def __init__(self, action, method=None, path=None, times=None, probability=None, delay=3.0):
        choices = tuple(action) if isinstance(action, (tuple, list)) else (action,)
        if not choices or any(a not in ACTIONS for a in choices):
            raise ValueError(f"unknown action {action!r}; one of {ACTIONS}")
        self.action = action
        self.choices = choices
        self.method = method.upper() if method else None
        self.path = re.compile(path) if path else None
        self.times = times
        self.probability = probability
        self.delay = delay
        self.fired = 0  # requests this rule decided

    def __repr__(self):
        return (
            f"Rule({self.action!r}, method={self.method!r}, path={self.path and self.path.pattern!r}, "
            f"times={self.times!r}, probability={self.probability!r}, fired={self.fired})"
        )

    def _matches(self, method, target):
        if self.times is not None and self.fired >= self.times:
            return False
        if self.method is not None and method != self.method:
            return False
        return self.path is None or self.path.search(target) is not None


class FaultProxy:
    """An HTTP proxy on loopback in front of ``upstream`` (``http://host:port``); see the module's docstring."""

    def __init__(self, upstream, seed=0, host="127.0.0.1"):
        up = urlparse(upstream)
        if up.scheme != "http" or not up.hostname or not up.port:
            raise ValueError(f"upstream must be http://host:port, got {upstream!r}")
        self.upstream = (up.hostname, up.port)
        self.rules = []
        self.ignore_conditions = False
        self.counts = Counter()
        self.requests = []
        self.replies = []
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._closing = threading.Event()
        proxy = self

        class Handler(_Handler):
            owner = proxy

        self._server = http.server.ThreadingHTTPServer((host, 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-proxy", daemon=True)
        self._thread.start()

    @property
    def url(self):
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def add(self, action, *, method=None, path=None, times=None, probability=None, delay=3.0):
        """Add a rule (after the existing ones) and return it."""
        rule = Rule(action, method, path, times, probability, delay)
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self):
        """Remove every rule: from now on every request is forwarded."""
        with self._lock:
            self.rules = []

    def decide(self, method, target):
        """The action for one request (and the rule that chose it, or None)."""
        with self._lock:
            for rule in self.rules:
                if not rule._matches(method, target):
                    continue
                if rule.probability is not None and self._rng.random() >= rule.probability:
                    continue
                rule.fired += 1
                action = rule.choices[0] if len(rule.choices) == 1 else self._rng.choice(rule.choices)
                return action, rule
            return FORWARD, None

    def _record(self, method, target, action):
        with self._changed:
            self.counts[action] += 1
            self.requests.append((method, target, action))
            self._changed.notify_all()

    def wait_until(self, predicate, timeout=30.0):
        """Wait until ``predicate()`` is true (checked after each request the proxy handles); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
            return True

    def close(self):
        self._closing.set()  # held replies are released at once
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the client expects
    owner = None  # the FaultProxy, set by a subclass

    def log_message(self, format, *args):
        pass

    def do_GET(self):
        self._handle()

    do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = do_GET

    def _read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self):
        proxy = self.owner
        body = self._read_body()
        action, rule = proxy.decide(self.command, self.path)
        proxy._record(self.command, self.path, action)
        if action == REFUSE:
            return self._reset()
        if action == UNAVAILABLE:
            return self._reply(503, "Service Unavailable", [("Content-Type", "application/xml")], _SLOW_DOWN)
        headers = [(k, v) for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP]
        if action == STRIP_IF_NONE_MATCH or proxy.ignore_conditions:
            headers = [(k, v) for k, v in headers if k.lower() != "if-none-match"]
        try:
            status, reason, resp_headers, resp_body = self._forward(headers, body)
        except OSError:
            return self._reply(502, "Bad Gateway", [], b"fault proxy: the upstream server did not answer")
        if action == RESET:
            return self._reset()
        if action == CLOSE:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return None
        if action == DELAY:
            proxy._closing.wait(rule.delay)
            return self._reset()
        return self._reply(status, reason, resp_headers, resp_body)

    def _forward(self, headers, body):
        conn = http.client.HTTPConnection(*self.owner.upstream, timeout=60)
        try:
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for k, v in headers:
                conn.putheader(k, v)
            if body or self.command in ("PUT", "POST", "PATCH"):
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body or None)
            resp = conn.getresponse()
            data = resp.read()
            resp_headers = [(k, v) for k, v in resp.getheaders() if k.lower() not in _HOP_BY_HOP]
            if self.command == "HEAD":
                length = resp.getheader("Content-Length")
                if length is not None:
                    resp_headers.append(("Content-Length", length))
            return resp.status, resp.reason, resp_headers, data
        finally:
            conn.close()

    def _reply(self, status, reason, headers, body):
        lines = [f"HTTP/1.1 {status} {reason}"] + [f"{k}: {v}" for k, v in headers]
        if self.command != "HEAD" and status not in (204, 304):
            lines.append(f"Content-Length: {len(body)}")
        else:
            body = b""
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        with self.owner._lock:  # before the client can see the reply, so that a count taken after it includes it
            self.owner.replies.append((self.command, self.path, status, len(head), len(body)))
        self.wfile.write(head + body)
        self.wfile.flush()

    def _reset(self):
        """Close the client's connection with a TCP reset (no reply, no orderly shutdown)."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass
