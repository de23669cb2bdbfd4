"""The dashboard's web server: the page, its scripts, and JSON views of the logs (GET only, never writes).

Built on the standard library's threading HTTP server. Routes:

- ``/``: the page; ``/static/<file>``: its script, style and plotly.js.
- ``/api/experiments``: the summary of every experiment; one whose log cannot be
  read (damaged) is ``{"name", "error"}`` instead.
- ``/api/best?name=N``: the experiment's best score so far, job by job (to
  compare experiments on one chart).
- ``/api/importance?name=N&score=S&goal=min|max``: the hyperparameter importance
  of the experiment's DONE jobs for the result S (fANOVA; cached for the newest
  version).
- ``/api/experiment?name=N[&since=V&created=C]``: one experiment's summary
  and its jobs changed after commit V of the incarnation created at C (all
  of its jobs when V is 0 or C is another incarnation); for ASHA and
  Hyperband also its rung view (``rungs``, whole: its size is bounded),
  unless nothing was committed after V.
"""

import ipaddress
import logging
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import orjson

from ..errors import ExperimentNotFoundError, SchedyError
from . import page, views
from .feed import Feeds

log = logging.getLogger("schedy.dashboard")

# The page loads its own files and nothing else; Plotly sets style attributes, hence 'unsafe-inline' for styles.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


class DashboardServer(ThreadingHTTPServer):
    """Serves one database's dashboard until :meth:`shutdown`."""

    daemon_threads = True

    def __init__(self, store, host="127.0.0.1", port=8765, poll_interval=1.0, min_interval=0.25, quiet=True):
        self.feeds = Feeds(store, min_interval=min_interval)
        self.poll_interval, self.quiet = poll_interval, quiet
        self.loopback = _is_loopback(host)
        super().__init__((host, port), Handler)

    @property
    def url(self):
        host, port = self.server_address[:2]
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{port}/"

    def handle_error(self, request, client_address):
        # A reader that goes away mid-answer (a closed tab, a reset connection, a timeout) is no fault of the
        # dashboard's: a debug line, not socketserver's traceback on the terminal. Anything else is a bug to show.
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, TimeoutError)):
            log.debug("dashboard: %s went away: %r", client_address, error)
            return
        super().handle_error(request, client_address)

    def start(self):
        """Serve on a background thread; return the thread."""
        t = threading.Thread(target=self.serve_forever, name="schedy-dashboard", daemon=True)
        t.start()
        return t


def _is_loopback(host):
    return host == "localhost" or _is_address_loopback(host)


class Handler(BaseHTTPRequestHandler):
    server_version = "schedy-dashboard"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        if not self.server.quiet:
            super().log_message(fmt, *args)

    # -- anything but reading is refused ---------------------------------------------------------
    def _refuse(self):
        # The body is not read, so the connection must end here: its bytes must never be taken for a request.
        self.close_connection = True
        self._send(
            HTTPStatus.METHOD_NOT_ALLOWED,
            _error("the dashboard is read only: it answers GET and HEAD"),
            "application/json",
            extra={"Allow": "GET, HEAD", "Connection": "close"},
        )

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = do_CONNECT = _refuse

    def do_HEAD(self):
        self._get(head=True)

    def do_GET(self):
        self._get(head=False)

    def _get(self, head):
        if self.server.loopback and not _loopback_host(self.headers.get("Host", "")):
            # A page of another site that resolves its own name to 127.0.0.1 (DNS rebinding) must not read the logs.
            return self._send(
                HTTPStatus.FORBIDDEN, _error("this dashboard answers only to localhost"), "application/json", head=head
            )
        url = urlsplit(self.path)
        query = parse_qs(url.query, keep_blank_values=True)
        try:
            status, body, ctype = self._route(url.path, query)
        except ExperimentNotFoundError as e:
            status, body, ctype = HTTPStatus.NOT_FOUND, _error(str(e)), "application/json"
        except BadQuery as e:
            status, body, ctype = HTTPStatus.BAD_REQUEST, _error(str(e)), "application/json"
        except (SchedyError, OSError) as e:  # a damaged log, an unreadable file, a store out of reach: say it
            log.warning("dashboard: %s", e)
            status, body, ctype = HTTPStatus.INTERNAL_SERVER_ERROR, _error(str(e)), "application/json"
        self._send(status, body, ctype, head=head)

    def _route(self, path, query):
        if path in ("/", "/index.html"):
            return HTTPStatus.OK, page.live_page(self.server.poll_interval), "text/html; charset=utf-8"
        if path.startswith("/static/"):
            found = page.static_file(path[len("/static/") :])
            if found is None:
                return HTTPStatus.NOT_FOUND, _error(f"no file {path!r}"), "application/json"
            return HTTPStatus.OK, found[0], found[1]
        if path == "/api/experiments":
            summaries = [_listed(feed, state, error) for feed, state, error in self.server.feeds.all()]
            return HTTPStatus.OK, b"[" + b",".join(summaries) + b"]", "application/json"
        if path == "/api/experiment":
            name = _one(query, "name")
            since, created = _int(query, "since", 0), _int(query, "created", 0)
            feed, state = self.server.feeds.get(name)  # one reading: both views are of the same version
            if created != state.created or since > state.version:
                since = 0  # another incarnation, or a log that was cut back: start over
            body = (
                b'{"summary":'
                + feed.render("summary", state)
                + b',"jobs":'
                + feed.render("job_columns", state, since=since)
                + (b',"rungs":' + feed.render("rungs", state) if _rungs_wanted(state, since) else b"")
                + b"}"
            )
            return HTTPStatus.OK, body, "application/json"
        if path == "/api/best":
            feed, state = self.server.feeds.get(_one(query, "name"))
            return HTTPStatus.OK, feed.render("best_curve", state), "application/json"
        if path == "/api/importance":
            name, score, goal = _one(query, "name"), _one(query, "score"), _one(query, "goal")
            if goal not in ("min", "max"):
                raise BadQuery(f"'goal' must be 'min' or 'max', got {goal[:40]!r}")
            feed, state = self.server.feeds.get(name)
            return HTTPStatus.OK, feed.render("importance", state, result=score, goal=goal), "application/json"
        return HTTPStatus.NOT_FOUND, _error(f"no page {path!r}"), "application/json"

    def _send(self, status, body, ctype, head=False, extra=None):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header(
            "Cache-Control",
            "no-store" if ctype == "application/json" or ctype.startswith("text/html") else "max-age=3600",
        )
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if not head:
            self.wfile.write(body)


def _listed(feed, state, error):
    """One experiment of the listing: its summary, or its name and the error that stops its log from being read."""
    if error is None:
        return feed.render("summary", state)
    log.warning("dashboard: %s", error)
    return orjson.dumps({"name": feed.name, "error": str(error)})


def _rungs_wanted(state, since):
    """Whether an answer carries the rung view: for ASHA and Hyperband, whole (its size is bounded) whenever
    something was committed after ``since``; when nothing was, the page keeps the one it has."""
    return state.kind in views.HALVING and since < state.version


class BadQuery(ValueError):
    """A request whose query string is not what the route takes."""


def _one(query, name):
    got = query.get(name)
    if not got or len(got) != 1 or not got[0]:
        raise BadQuery(f"the query needs exactly one non-empty {name!r}")
    return got[0]


def _int(query, name, default):
    got = query.get(name)
    if not got:
        return default
    try:
        value = int(got[0])
    except ValueError:
        raise BadQuery(f"{name!r} must be an integer, got {got[0][:40]!r}") from None
    if value < 0:
        raise BadQuery(f"{name!r} must not be negative, got {value}")
    return value


def _loopback_host(host):
    """True if the Host header names this machine: localhost or a loopback address, with any port."""
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    name = name.strip("[]").lower()
    return name == "localhost" or _is_address_loopback(name)


def _is_address_loopback(name):
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _error(message):
    return orjson.dumps({"error": message})
