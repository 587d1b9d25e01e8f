"""moto's S3 server, answering one request at a time: the test S3 server of scripts/services.sh.

Why not `python3 -m moto.server` as it is: moto decides a create-only put
(`If-None-Match: *`) by looking up the object and then writing it, with no lock between,
on a server that runs each request in its own thread. Two writers that create one object
at once can then both be told they created it, and the second silently replaces the
first. S3 decides such a put atomically, and the objectstore engine's append mode relies on
that (one create-only put per version number); on moto under load the concurrency tests
saw an append lost in 400. Serializing the requests gives the tests a server that keeps
the promise S3 keeps. Connections are still served by threads, so a client that keeps
one open does not shut the others out.

Usage: python3 moto_serial.py [-H HOST] [-p PORT]
"""

import argparse
import os
import signal
import sys
import threading

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple


def serialized(app):
    lock = threading.Lock()

    def one_at_a_time(environ, start_response):
        with lock:
            # The body is read to its end under the lock, so that a response is made
            # whole before another request changes what it reads.
            return list(app(environ, start_response))

    return one_at_a_time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    args = parser.parse_args()
    # As moto.server does: moto reads its own port from here (in URLs it makes).
    os.environ.setdefault("MOTO_PORT", str(args.port))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(args.host, args.port, serialized(app), threaded=True)


if __name__ == "__main__":
    main()
