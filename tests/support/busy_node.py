"""A loopback proxy in front of the real Elasticsearch node that answers the first bulk
requests with 429 Too Many Requests, as a node under load does, and forwards the rest."""

from __future__ import annotations

import http.server
import threading
import urllib.error
import urllib.request

HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length"}


class BusyNode:
    """``with BusyNode(es_url, busy_bulks=2) as node:`` then point a client at ``node.url``;
    ``node.bulk_requests`` counts the bulk requests that arrived (answered or forwarded)."""

    def __init__(self, upstream: str, busy_bulks: int) -> None:
        self.upstream = upstream.rstrip("/")
        self.busy_bulks = busy_bulks
        self.bulk_requests = 0
        self.lock = threading.Lock()
        node = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args) -> None:
                pass

            def _relay(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if "/_bulk" in self.path:
                    with node.lock:
                        node.bulk_requests += 1
                        busy = node.bulk_requests <= node.busy_bulks
                    if busy:
                        return self._answer(429, b'{"error":"too many requests","status":429}')
                request = urllib.request.Request(
                    node.upstream + self.path, data=body, method=self.command
                )
                for name, value in self.headers.items():
                    if name.lower() not in HOP_HEADERS and name.lower() != "host":
                        request.add_header(name, value)
                try:
                    with urllib.request.urlopen(request, timeout=60) as response:
                        status, headers, data = response.status, response.headers, response.read()
                except urllib.error.HTTPError as exc:
                    status, headers, data = exc.code, exc.headers, exc.read()
                self._answer(status, data, headers)

            def _answer(self, status: int, data: bytes, headers=None) -> None:
                self.send_response(status)
                for name, value in (headers or {}).items():
                    if name.lower() not in HOP_HEADERS:
                        self.send_header(name, value)
                if headers is None:
                    self.send_header("Content-Type", "application/json")
                    self.send_header("X-Elastic-Product", "Elasticsearch")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = _relay

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> BusyNode:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_exc) -> None:
        self.server.shutdown()
        self.server.server_close()
