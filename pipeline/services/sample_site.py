"""A small local HTTP server for the bundled sample news site and other test fixtures.

It serves files under a root folder on a loopback address only, replacing the placeholder
``{{BASE}}`` in text files with the live base URL (so feeds and pages can link to each
other absolutely), and behaves like a modest real web server: content types and charsets,
ETag / Last-Modified with ``304 Not Modified``, gzip, ``HEAD``, per-file headers from a
``<file>.headers`` sidecar, and extra routes that tests register in code.

    with serve_sample_site() as server:
        for feed in feed_urls(server):
            print(feed["name"], feed["url"])

Run ``python -m pipeline.services.sample_site [--port N]`` to serve the sample site until Ctrl-C.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import ipaddress
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.message import Message
from email.utils import format_datetime, formatdate, parsedate_to_datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple
from urllib.parse import unquote, urlsplit

import yaml

from pipeline.config import REPO_ROOT

SAMPLE_SITE_ROOT = REPO_ROOT / "deploy" / "sample-site"
PLACEHOLDER = b"{{BASE}}"
SIDECAR_SUFFIX = ".headers"
TEXT_SUFFIXES = {".xml", ".html", ".htm", ".txt", ".rss", ".atom"}
COMPRESSIBLE_PREFIXES = (
    "text/",
    "application/rss+xml",
    "application/atom+xml",
    "application/xml",
    "application/json",
)
SIMPLE_TYPES = {
    ".txt": "text/plain",
    ".json": "application/json",
    ".md": "text/markdown",
    ".css": "text/css",
    ".js": "text/javascript",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".svg": "image/svg+xml",
    ".webp": "image/webp",
    ".rss": "application/rss+xml",
    ".atom": "application/atom+xml",
}
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_:.\-]+)""", re.I)
_XML_ENCODING = re.compile(rb"""<\?xml[^>]*encoding\s*=\s*["']([A-Za-z0-9_.\-]+)["']""", re.I)


class RequestRecord(NamedTuple):
    """One request seen by the server. ``headers`` is case-insensitive (``headers["etag"]``)."""

    method: str
    path: str
    headers: Message
    status: int
    at: float = 0.0  # arrival, wall-clock seconds


@dataclass(frozen=True)
class _Response:
    """What to send: status, headers and the (identity-encoded) body."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass(frozen=True)
class _Route:
    path: str
    body: bytes
    headers: dict[str, str]
    status: int
    mtime: float


# --------------------------------------------------------------------------- helpers
def is_loopback(host: str) -> bool:
    """True for ``localhost`` and IPv4 loopback addresses (127.0.0.0/8)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.IPv4Address(host).is_loopback
    except ValueError:
        return False


def sniff_charset(body: bytes, default: str = "utf-8") -> str:
    """Charset from an HTML ``<meta charset>`` / ``http-equiv`` or an XML declaration."""
    head = body[:4096]
    match = _META_CHARSET.search(head) or _XML_ENCODING.search(head)
    return match.group(1).decode("ascii").lower() if match else default


def guess_content_type(path: str, body: bytes) -> str:
    """Content-Type for a file name and its bytes (feeds are told apart by their root)."""
    suffix = Path(path).suffix.lower()
    if suffix in {".html", ".htm"}:
        return f"text/html; charset={sniff_charset(body)}"
    if suffix == ".xml":
        head = body[:2048]
        if b"<feed" in head:
            kind = "application/atom+xml"
        elif b"<rss" in head or b"<rdf:RDF" in head:
            kind = "application/rss+xml"
        else:
            kind = "application/xml"
        return f"{kind}; charset={sniff_charset(body)}"
    kind = SIMPLE_TYPES.get(suffix, "application/octet-stream")
    if kind.startswith("text/") or kind in {"application/rss+xml", "application/atom+xml"}:
        return f"{kind}; charset={sniff_charset(body)}"
    return kind


def read_sidecar(path: Path) -> dict[str, str]:
    """Headers from ``<file>.headers``: ``Name: value`` lines; blanks and ``#`` lines skipped."""
    sidecar = path.with_name(path.name + SIDECAR_SUFFIX)
    if not sidecar.is_file():
        return {}
    headers: dict[str, str] = {}
    for line in sidecar.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#") and ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip()] = value.strip()
    return headers


def merge_headers(base: dict[str, str], extra: dict[str, str]) -> dict[str, str]:
    """``base`` updated by ``extra``, header names compared case-insensitively."""
    merged = {k: v for k, v in base.items() if k.lower() not in {e.lower() for e in extra}}
    merged.update(extra)
    return merged


def get_header(headers: dict[str, str], name: str) -> str | None:
    """Case-insensitive lookup in a plain dict of headers."""
    return next((v for k, v in headers.items() if k.lower() == name.lower()), None)


def make_etag(body: bytes) -> str:
    """A strong ETag derived from the body."""
    return '"' + hashlib.sha256(body).hexdigest()[:20] + '"'


def etag_matches(if_none_match: str, etag: str) -> bool:
    """Weak comparison of an If-None-Match list against our ETag (RFC 9110 §13.1.2)."""
    if if_none_match.strip() == "*":
        return True
    wanted = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == wanted for tag in if_none_match.split(","))


def not_modified_since(if_modified_since: str, mtime: float) -> bool:
    """True when the resource has not changed since the If-Modified-Since date."""
    try:
        since = parsedate_to_datetime(if_modified_since).timestamp()
    except (TypeError, ValueError, IndexError):
        return False
    return int(mtime) <= since


def accepts_gzip(accept_encoding: str | None) -> bool:
    """True when Accept-Encoding allows gzip (and not with ``q=0``)."""
    for part in (accept_encoding or "").split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip().lower() in {"gzip", "x-gzip", "*"}:
            return params.replace(" ", "").lower() not in {"q=0", "q=0.0", "q=0.00", "q=0.000"}
    return False


# --------------------------------------------------------------------------- server
class FixtureServer:
    """Serve ``root`` on a loopback address from a background thread.

    Use as a context manager, or call :meth:`start` / :meth:`stop`. ``port=0`` picks a
    free port; :attr:`base_url` is known once started.
    """

    def __init__(
        self, root: Path | str, host: str = "127.0.0.1", port: int = 0, *, verbose: bool = False
    ) -> None:
        if not is_loopback(host):
            raise ValueError(f"FixtureServer binds loopback addresses only, not {host!r}")
        self.root = Path(root).resolve()
        self.host = host
        self.port = port
        self.verbose = verbose
        self._routes: dict[str, _Route] = {}
        self._log: list[RequestRecord] = []
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle
    def start(self) -> FixtureServer:
        """Bind and serve in a daemon thread; returns ``self``."""
        if self._httpd is not None:
            return self
        httpd = ThreadingHTTPServer((self.host, self.port), _make_handler(self))
        httpd.daemon_threads = True
        self._httpd = httpd
        self.port = httpd.server_address[1]
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"fixture-server-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket (idempotent)."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FixtureServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- addresses
    @property
    def base_url(self) -> str:
        """``http://host:port`` of the running server (no trailing slash)."""
        if self._httpd is None:
            raise RuntimeError("FixtureServer is not running: call start() first")
        return f"http://{self.host}:{self.port}"

    def url(self, path: str) -> str:
        """Absolute URL for a path relative to the root (``"a/b.html"`` or ``"/a/b.html"``)."""
        return f"{self.base_url}/{path.lstrip('/')}"

    # -- routes and log
    def add_route(
        self,
        path: str,
        body: bytes | str = b"",
        headers: dict[str, str] | None = None,
        status: int = 200,
    ) -> str:
        """Serve ``body`` at ``path`` (exact path, or path plus query); returns its URL.

        Routes win over files. ``headers`` override the defaults (e.g. ``Content-Type``,
        ``Location`` for redirects); the body is sent as given, with no ``{{BASE}}``
        substitution. A route with status 200 still gets ETag/304 and gzip.
        """
        data = body.encode("utf-8") if isinstance(body, str) else bytes(body)
        key = "/" + path.lstrip("/")
        with self._lock:
            self._routes[key] = _Route(key, data, dict(headers or {}), status, time.time())
        return self.url(key) if self._httpd is not None else key

    def remove_route(self, path: str) -> None:
        """Forget a route registered with :meth:`add_route`."""
        with self._lock:
            self._routes.pop("/" + path.lstrip("/"), None)

    @property
    def requests(self) -> list[RequestRecord]:
        """A copy of the request log, oldest first."""
        with self._lock:
            return list(self._log)

    def clear_requests(self) -> None:
        """Empty the request log."""
        with self._lock:
            self._log.clear()

    def _record(self, record: RequestRecord) -> None:
        with self._lock:
            self._log.append(record)

    def _route(self, raw_path: str) -> _Route | None:
        with self._lock:
            return self._routes.get(raw_path) or self._routes.get(urlsplit(raw_path).path)

    # -- responses
    def respond(self, method: str, raw_path: str, request_headers: Message) -> _Response:
        """Build the response for one request (before gzip and HEAD handling)."""
        route = self._route(raw_path)
        if route is not None:
            return self._route_response(route, request_headers)
        path = self._resolve(raw_path)
        if path is None:
            return _error(HTTPStatus.NOT_FOUND)
        return self._file_response(path, request_headers)

    def _resolve(self, raw_path: str) -> Path | None:
        """Map a URL path to a file under root, or None (missing, outside root, sidecar)."""
        rel = unquote(urlsplit(raw_path).path).lstrip("/")
        target = (self.root / rel).resolve()
        if not target.is_relative_to(self.root):
            return None
        if target.is_dir():
            target = target / "index.html"
        if not target.is_file() or target.name.endswith(SIDECAR_SUFFIX):
            return None
        return target

    def _file_response(self, path: Path, request_headers: Message) -> _Response:
        body = path.read_bytes()
        if path.suffix.lower() in TEXT_SUFFIXES:
            body = body.replace(PLACEHOLDER, self.base_url.encode("ascii"))
        headers = {"Content-Type": guess_content_type(path.name, body)}
        headers = merge_headers(headers, read_sidecar(path))
        return _conditional(200, headers, body, path.stat().st_mtime, request_headers)

    def _route_response(self, route: _Route, request_headers: Message) -> _Response:
        if route.status != 200:
            return _Response(route.status, dict(route.headers), route.body)
        headers = {"Content-Type": guess_content_type(route.path, route.body)}
        headers = merge_headers(headers, route.headers)
        return _conditional(200, headers, route.body, route.mtime, request_headers)


def _error(status: HTTPStatus) -> _Response:
    body = f"{status.value} {status.phrase}\n".encode("ascii")
    return _Response(status.value, {"Content-Type": "text/plain; charset=utf-8"}, body)


def _conditional(
    status: int, headers: dict[str, str], body: bytes, mtime: float, request_headers: Message
) -> _Response:
    """Add validators, answering 304 when If-None-Match / If-Modified-Since match."""
    validators = {"ETag": make_etag(body), "Last-Modified": formatdate(mtime, usegmt=True)}
    headers = merge_headers(validators, headers)  # sidecar/route validators win
    etag = get_header(headers, "ETag") or ""
    if_none_match = request_headers.get("If-None-Match")
    if_modified_since = request_headers.get("If-Modified-Since")
    if if_none_match is not None:
        fresh = etag_matches(if_none_match, etag)
    else:
        fresh = if_modified_since is not None and not_modified_since(if_modified_since, mtime)
    if fresh:
        kept = {k: v for k, v in headers.items() if k.lower() not in {"content-length"}}
        return _Response(304, kept, b"")
    return _Response(status, headers, body)


def _encode(response: _Response, request_headers: Message) -> _Response:
    """gzip the body when the client accepts it and the type is worth compressing."""
    headers = dict(response.headers)
    kind = (get_header(headers, "Content-Type") or "").lower()
    compressible = kind.startswith(COMPRESSIBLE_PREFIXES)
    if response.status != 200 or not response.body or not compressible:
        return response
    if get_header(headers, "Content-Encoding") is not None:
        return response
    headers["Vary"] = "Accept-Encoding"
    if not accepts_gzip(request_headers.get("Accept-Encoding")):
        return _Response(response.status, headers, response.body)
    headers["Content-Encoding"] = "gzip"
    return _Response(response.status, headers, gzip.compress(response.body, mtime=0))


def _make_handler(server: FixtureServer) -> type[BaseHTTPRequestHandler]:
    """A request-handler class bound to ``server``."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "wirestream-fixtures/0.1"

        def do_GET(self) -> None:
            self._serve(send_body=True)

        def do_HEAD(self) -> None:
            self._serve(send_body=False)

        def _serve(self, send_body: bool) -> None:
            arrived = time.time()
            try:
                response = server.respond(self.command, self.path, self.headers)
                response = _encode(response, self.headers)
            except Exception:  # a fixture bug should be a 500, not a hung client
                response = _error(HTTPStatus.INTERNAL_SERVER_ERROR)
            server._record(
                RequestRecord(self.command, self.path, self.headers, response.status, arrived)
            )
            self.send_response(response.status)
            headers = dict(response.headers)
            if response.status not in (204, 304):
                headers = merge_headers({"Content-Length": str(len(response.body))}, headers)
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            if send_body and response.status not in (204, 304):
                self.wfile.write(response.body)

        def log_message(self, format: str, *args: Any) -> None:
            if server.verbose:
                super().log_message(format, *args)

    return Handler


# --------------------------------------------------------------------------- sample site
def serve_sample_site(port: int = 0, *, verbose: bool = False) -> FixtureServer:
    """Start a :class:`FixtureServer` for ``deploy/sample-site`` on 127.0.0.1."""
    return FixtureServer(SAMPLE_SITE_ROOT, port=port, verbose=verbose).start()


def load_manifest(root: Path = SAMPLE_SITE_ROOT) -> list[dict[str, Any]]:
    """The publishers listed in ``<root>/site.yaml``."""
    data = yaml.safe_load((root / "site.yaml").read_text(encoding="utf-8"))
    return list(data["publishers"])


def feed_urls(server: FixtureServer) -> list[dict[str, str]]:
    """Feeds of the site served by ``server``: ``{"name", "url", "language"}`` each."""
    return [
        {"name": pub["name"], "url": server.url(pub["feed"]), "language": pub["language"]}
        for pub in load_manifest(server.root)
    ]


def main(argv: list[str] | None = None) -> int:
    """Serve the sample site until Ctrl-C, printing its feed URLs."""
    parser = argparse.ArgumentParser(description="Serve the wirestream sample news site.")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0 = any free)")
    parser.add_argument("--verbose", action="store_true", help="log each request to stderr")
    args = parser.parse_args(argv)
    server = serve_sample_site(port=args.port, verbose=args.verbose)
    print(f"Serving {server.root} at {server.base_url} (Ctrl-C to stop)")
    for feed in feed_urls(server):
        print(f"  {feed['name']:<16} {feed['language']:<3} {feed['url']}")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print("stopping")
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


class LiveFeed:
    """An RSS feed on a fixture server that gains ``count`` items every ``every`` seconds,
    each a page of ``pages`` under a new URL; it lists the latest 20, like a publisher's
    feed. For runs that must see articles appear while they go on."""

    def __init__(
        self, server: FixtureServer, pages: list[bytes], every: float = 8.0, count: int = 2
    ) -> None:
        self.server, self.pages, self.every, self.count = server, pages, every, count
        self.items: list[tuple[str, str, datetime]] = []
        self.stop = threading.Event()
        self.lock = threading.Lock()
        for _ in range(5):
            self._publish(count)
        self.feed_url = server.url("/live/feed.xml")
        self.thread = threading.Thread(target=self._run, name="live-feed", daemon=True)

    def _publish(self, count: int) -> None:
        with self.lock:
            for _ in range(count):
                number = len(self.items)
                path = f"/live/{number}.html"
                self.server.add_route(path, self.pages[number % len(self.pages)])
                self.items.append(
                    (self.server.url(path), f"Live item {number}", datetime.now(timezone.utc))
                )
            entries = "".join(
                f"<item><title>{title}</title><link>{url}</link><guid>{url}</guid>"
                f"<pubDate>{format_datetime(when)}</pubDate></item>"
                for url, title, when in reversed(self.items[-20:])
            )
            self.server.add_route(
                "/live/feed.xml",
                f'<?xml version="1.0"?><rss version="2.0"><channel><title>Live</title>'
                f"<link>{self.server.base_url}/live/</link>{entries}</channel></rss>",
                headers={"Content-Type": "application/rss+xml"},
            )

    def _run(self) -> None:
        while not self.stop.wait(self.every):
            self._publish(self.count)

    def published(self) -> list[str]:
        with self.lock:
            return [url for url, _, _ in self.items]
