"""The S3 server of the tests and benchmarks: moto's, with every write handled whole before the next one.

    python tests/s3server.py [-H HOST] [-p PORT]     (port 0: a free one, printed as "Running on http://...")

moto answers requests on several threads, and checks a conditional put (``If-None-Match: *``, the create
that Schedy's object store relies on) in two steps: it looks for the object, then writes it. Two creates of
one object that interleave there both succeed, and the second overwrites the first, where S3, GCS and Azure
refuse the second. Seen here on a loaded machine: a commit that its writer was told had landed was
overwritten by another writer's. So this server lets reads run side by side but takes a lock around each
request that may write (any method but GET and HEAD), which makes moto's create atomic, as a real store's is.
"""

import argparse
import signal
import sys
import threading

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import run_simple


class OneWriteAtATime:
    """WSGI middleware: requests other than GET and HEAD are handled one at a time."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        if environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
            return self.app(environ, start_response)
        with self.lock:
            # moto reads the body and stores the object inside this call; only the (empty) reply comes after.
            return list(self.app(environ, start_response))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=0)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(args.host, args.port, OneWriteAtATime(app), threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
