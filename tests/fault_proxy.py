"""A fault-injecting HTTP proxy on 127.0.0.1 in front of an S3 server (moto in the tests).

Deterministic by request number: every ``every``-th request of a kind gets its fault: a 503
``SlowDown`` or a 500 ``InternalError`` answer, a reset connection (closed with no answer), or a
slow answer. Everything else is forwarded unchanged. ``faults`` counts what was injected.
"""

from __future__ import annotations

import http.client
import http.server
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

SLOW_DOWN = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
             b"<Message>Please reduce your request rate.</Message></Error>")
INTERNAL = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code>'
            b"<Message>We encountered an internal error. Please try again.</Message></Error>")

# (kind, every n-th request): primes, so the faults do not always hit the same operation. About
# one request in eight faults: a text run of ~400 requests meets each kind a dozen times or more.
DEFAULT_PLAN = (("slow_down_503", 23), ("internal_500", 29), ("reset", 31), ("slow", 37))


class _Proxy(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # resets are what this server is for


@contextmanager
def fault_proxy(upstream: str, plan=DEFAULT_PLAN, slow_s: float = 1.0) -> Iterator[tuple[str, Counter]]:
    target = urlsplit(upstream)
    lock = threading.Lock()
    seen = {"n": 0}
    faults: Counter = Counter()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _fault(self) -> str | None:
            with lock:
                seen["n"] += 1
                n = seen["n"]
            for kind, every in plan:
                if n % every == 0:
                    faults[kind] += 1
                    return kind
            return None

        def _answer(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":  # a HEAD answer has no body, or the next one is corrupt
                self.wfile.write(body)

        def _forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            fault = self._fault()
            if fault == "slow_down_503":
                return self._answer(503, SLOW_DOWN)
            if fault == "internal_500":
                return self._answer(500, INTERNAL)
            if fault == "reset":
                # RST instead of FIN: the client sees "connection reset by peer".
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.close_connection = True
                return None
            if fault == "slow":
                time.sleep(slow_s)
            upstream_conn = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection",)}
            upstream_conn.request(self.command, self.path, body=body, headers=headers)
            response = upstream_conn.getresponse()
            data = response.read()
            self.send_response(response.status, response.reason)
            for key, value in response.getheaders():
                # a HEAD answer's Content-Length is the object's size: keep it
                if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                    self.send_header(key, value)
            length = response.getheader("Content-Length") if self.command == "HEAD" else None
            self.send_header("Content-Length", length or str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
            upstream_conn.close()

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

    server = _Proxy(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", faults
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
