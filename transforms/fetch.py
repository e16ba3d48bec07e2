"""Download feeds and article pages politely and defensively.

``fetch_url`` is the one HTTP entry point: per-read timeouts and a wall-clock
deadline over the whole download (``transforms.deadline``), a size cap enforced on the
*decoded* body (so a decompression bomb stops at the cap), limited redirects,
retries with backoff on 429/5xx, a clear User-Agent, refusal of private,
loopback and link-local addresses (checked again on every redirect hop) unless the
settings allow them, and per-host politeness (``transforms.politeness``). Article
pages are fetched only where robots.txt allows (``transforms.robots``). An answer that
is a bot challenge, an access denial or a consent page (``transforms.walls``) is a
failure of its own kind, and its host is left alone for a while (``wall_backoff``).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

import apache_beam as beam
import requests
from apache_beam.coders import StrUtf8Coder
from apache_beam.metrics import Metrics
from apache_beam.transforms.userstate import ReadModifyWriteStateSpec
from resiliparse.parse.encoding import bytes_to_str, detect_encoding
from urllib3.exceptions import (
    ConnectTimeoutError,
    NameResolutionError,
    NewConnectionError,
    ReadTimeoutError,
)
from urllib3.util.retry import Retry

from transforms.article import FeedItem, Page
from transforms.dead_letters import Failure, dead_letter
from transforms.deadline import Deadline, DeadlineAdapter
from transforms.guard import guarded
from transforms.politeness import HostGate, LanePacer, gate_for, host_key, pacing_lane
from transforms.robots import RobotsCache
from transforms.settings import FetchSettings
from transforms.walls import find_wall

HTML_TYPES = ("text/html", "application/xhtml+xml")
MAX_VALIDATOR_CHARS = 256
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]{2,40})""", re.I)


class FetchError(Exception):
    """A download that failed for a reason worth counting (``reason`` is a metric name)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class Response:
    """What a fetch returns: the final URL, status, headers and the (decoded-encoding) body."""

    url: str
    status: int
    headers: dict[str, str]
    body: bytes
    fetched_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    html: str | None = None  # the decoded body of an HTML answer

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    @property
    def validators(self) -> dict[str, str]:
        """The ETag and Last-Modified to send back in a conditional GET; one longer than
        ``MAX_VALIDATOR_CHARS`` (which no real server sends) is not kept, so what a poll
        keeps per feed or sitemap is bounded whatever a server sends."""
        return {
            name: value
            for name in ("etag", "last-modified")
            if (value := self.headers.get(name)) and len(value) <= MAX_VALIDATOR_CHARS
        }


def make_session(settings: FetchSettings) -> requests.Session:
    """Return a ``requests`` session with retries on connection errors, 429 and 5xx."""
    session = requests.Session()
    retry = Retry(
        total=settings.retries,
        connect=settings.retries,
        read=settings.retries,
        status=settings.retries,
        backoff_factor=0.5,
        status_forcelist=(429, 500, 502, 503, 504),
        allowed_methods=("GET", "HEAD"),
        respect_retry_after_header=True,
        raise_on_status=False,
        redirect=False,
    )
    adapter = DeadlineAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.max_redirects = settings.max_redirects
    session.headers["User-Agent"] = settings.user_agent
    session.headers["Accept-Encoding"] = "gzip, deflate, br"
    return session


def check_address(url: str, allow_private: bool) -> None:
    """Raise ``FetchError`` unless ``url`` is http(s) to a public address (or private allowed)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:  # a bad port or an unbalanced IPv6 bracket
        raise FetchError("bad_url", f"not a valid URL: {url[:300]!r} ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FetchError("bad_url", f"not an http(s) URL: {url[:300]!r}")
    if allow_private:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, port or 80, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        raise FetchError("dns", f"cannot resolve {parts.hostname}: {exc}") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise FetchError(
                "private_address",
                f"{parts.hostname} resolves to non-public address {address}; "
                "set fetch.allow_private_addresses to fetch it",
            )


def fetch_url(
    session: requests.Session,
    url: str,
    settings: FetchSettings,
    headers: dict[str, str] | None = None,
) -> Response:
    """Return the response for ``url``, or raise ``FetchError`` with a countable reason."""
    gate = gate_for(settings.host_min_delay, settings.host_max_concurrent)
    left_alone = gate.backed_off(url)
    if left_alone:
        raise FetchError(
            "walled_host", f"{url}: its host answered with a wall; left alone {left_alone:.0f}s"
        )
    current = url
    with Deadline(settings.deadline) as deadline:
        try:
            for _ in range(settings.max_redirects + 1):
                check_address(current, settings.allow_private_addresses)
                with gate.slot(current):
                    resp = _get(session, current, settings, headers)
                    with resp:
                        if resp.is_redirect and resp.headers.get("location"):
                            current = requests.compat.urljoin(current, resp.headers["location"])
                            continue
                        body = _read_capped(resp, current, settings.max_bytes)
                if deadline.expired:  # the body may look complete when the socket was cut
                    raise FetchError("deadline", "")
                response = Response(
                    url=current,
                    status=resp.status_code,
                    headers={k.lower(): v for k, v in resp.headers.items()},
                    body=body,
                )
                return refuse_walls(response, url, settings, gate)
        except FetchError:
            if deadline.expired:
                raise FetchError(
                    "deadline", f"{url}: not downloaded within {settings.deadline:g}s"
                ) from None
            raise
    raise FetchError("too_many_redirects", f"{url}: more than {settings.max_redirects} redirects")


def refuse_walls(resp: Response, url: str, settings: FetchSettings, gate: HostGate) -> Response:
    """Return ``resp``, or raise ``FetchError`` (reason: the wall's kind) when it is a bot
    challenge, an access denial or a consent page, and leave the host alone for a while."""
    if resp.content_type and resp.content_type not in HTML_TYPES:
        gate.note_answer(url)
        return resp
    resp.html = decode_html(resp.body, resp.headers.get("content-type", ""))
    wall = find_wall(resp.html, resp.url, resp.status, resp.headers)
    if wall is None:
        gate.note_answer(url)
        return resp
    seconds = gate.note_wall(url, settings.wall_backoff, settings.wall_backoff_max)
    raise FetchError(
        wall.kind,
        f"{url}: HTTP {resp.status}, {wall.kind.replace('_', ' ')} ({wall.evidence}); "
        f"its host is left alone for {seconds:.0f}s",
    )


def _get(
    session: requests.Session, url: str, settings: FetchSettings, headers: dict[str, str] | None
) -> requests.Response:
    try:
        return session.get(
            url, headers=headers, timeout=settings.timeout, stream=True, allow_redirects=False
        )
    except requests.RequestException as exc:
        if _is_timeout(exc):
            raise FetchError("timeout", f"{url}: no answer within {settings.timeout}s") from None
        if isinstance(_cause(exc), NameResolutionError):  # the host is gone: a hard failure
            raise FetchError("dns", f"{url}: cannot resolve its host ({exc})") from None
        raise FetchError("connection", f"{url}: {exc.__class__.__name__}: {exc}") from None


def _cause(exc: requests.RequestException) -> object:
    return getattr(exc.args[0], "reason", None) if exc.args else None


def _is_timeout(exc: requests.RequestException) -> bool:
    # After retries urllib3 wraps a read timeout in MaxRetryError, which requests
    # re-raises as ConnectionError; look at the cause to tell them apart.
    if isinstance(exc, requests.Timeout):
        return True
    reason = _cause(exc)
    if isinstance(reason, NewConnectionError):  # a subclass of ConnectTimeoutError
        return False
    return isinstance(reason, (ReadTimeoutError, ConnectTimeoutError))


def _read_capped(resp: requests.Response, url: str, max_bytes: int) -> bytes:
    declared = resp.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise FetchError("too_large", f"{url}: Content-Length {declared} exceeds {max_bytes} bytes")
    chunks, size = [], 0
    try:
        for chunk in resp.iter_content(chunk_size=65536):
            size += len(chunk)
            if size > max_bytes:
                raise FetchError("too_large", f"{url}: body exceeds {max_bytes} bytes (decoded)")
            chunks.append(chunk)
    except requests.RequestException as exc:
        raise FetchError("read_error", f"{url}: {exc.__class__.__name__}: {exc}") from None
    return b"".join(chunks)


def declared_charset(content_type: str) -> str | None:
    """Return the charset named in a Content-Type header value, if any."""
    match = re.search(r"charset\s*=\s*[\"']?([^\s;\"']+)", content_type, re.I)
    return match.group(1) if match else None


def decode_html(body: bytes, content_type: str = "") -> str:
    """Return ``body`` as text, decoded as the evidence says.

    A byte-order mark wins; then bytes that are valid UTF-8 with multi-byte sequences
    are UTF-8 whatever the labels claim (a server's default ``charset=iso-8859-1`` on a
    UTF-8 page is common; the reverse, Latin-1 text that happens to be valid multi-byte
    UTF-8, is vanishingly rare). Otherwise the header's charset, then ``<meta>``, each
    only if the bytes decode cleanly with it (servers often label windows-1252 pages
    as UTF-8) and a UTF-16/32 label only on bytes that have the NULs such text must.
    """
    for bom, name in _BOMS:
        if body.startswith(bom):
            return body[len(bom) :].decode(name, errors="replace")
    if not body.isascii():
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError:
            pass
    candidates: list[str | None] = [declared_charset(content_type)]
    meta = _META_CHARSET.search(body[:4096])
    candidates.append(meta.group(1).decode("ascii") if meta else None)
    for label in candidates:
        if not label or (_is_wide(label) and b"\x00" not in body[:4096]):
            continue
        try:
            return body.decode(_alias(label))
        except (LookupError, UnicodeDecodeError):
            continue
    # No usable declaration: resiliparse detects, then falls back to utf-8 and cp1252.
    return bytes_to_str(body, detect_encoding(body) or "utf-8", errors="replace")


_BOMS = (
    (b"\xef\xbb\xbf", "utf-8"),
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
)


def _is_wide(name: str) -> bool:
    return name.lower().replace("_", "-").startswith(("utf-16", "utf16", "utf-32", "utf32", "ucs"))


def _alias(name: str) -> str:
    # Browsers treat these labels as windows-1252 (WHATWG encoding standard).
    lowered = name.lower()
    return "cp1252" if lowered in ("iso-8859-1", "latin1", "latin-1", "us-ascii", "ascii") else name


def make_robots(session: requests.Session, settings: FetchSettings) -> RobotsCache:
    """Return a robots.txt cache that downloads through ``fetch_url`` (same safety rules)."""

    def fetch(address: str) -> tuple[int, bytes]:
        resp = fetch_url(session, address, settings, headers={"Accept": "text/plain, */*"})
        return resp.status, resp.body

    gate = gate_for(settings.host_min_delay, settings.host_max_concurrent)
    return RobotsCache(fetch, settings.user_agent, settings.robots_ttl, gate)


def fetch_page(
    session: requests.Session,
    item: FeedItem,
    settings: FetchSettings,
    robots: RobotsCache | None = None,
) -> Page:
    """Return the decoded HTML page behind a feed item, or raise ``FetchError``."""
    if robots is not None and not robots.allowed(item.url):
        raise FetchError("robots_disallowed", f"{item.url}: disallowed by robots.txt")
    resp = fetch_url(session, item.url, settings)
    if resp.status != 200:
        raise FetchError(f"http_{resp.status}", f"{item.url}: HTTP {resp.status}")
    if resp.content_type and resp.content_type not in HTML_TYPES:
        raise FetchError("not_html", f"{item.url}: content type {resp.content_type!r} is not HTML")
    html = resp.html if resp.html is not None else decode_html(resp.body, "")
    return Page(url=item.url, final_url=resp.url, html=html, fetched_at=resp.fetched_at, item=item)


class FetchPageDoFn(beam.DoFn):
    """Download each item's page; failures go to the ``dead_letter`` output."""

    def __init__(self, settings: FetchSettings) -> None:
        self.settings = settings
        self.fetched = Metrics.counter("wirestream", "pages_fetched")

    def setup(self) -> None:
        self.session = make_session(self.settings)
        # Per DoFn instance: each instance asks a host for robots.txt once per TTL.
        self.robots = (
            make_robots(self.session, self.settings) if self.settings.respect_robots else None
        )

    @guarded("fetch")
    def process(self, item: FeedItem):
        try:
            page = fetch_page(self.session, item, self.settings, self.robots)
        except FetchError as exc:
            yield dead_letter(Failure("fetch", exc.reason, item.url, str(exc)))
            return
        self.fetched.inc()
        yield page

    def teardown(self) -> None:
        self.session.close()


class PacedFetchPageDoFn(FetchPageDoFn):
    """(lane, item) -> page, keyed by the host's pacing lane: each request to a host goes
    ``host_min_delay`` after the previous one ended, across all workers (``politeness``)."""

    LAST_ENDS = ReadModifyWriteStateSpec("last_ends", StrUtf8Coder())

    def __init__(self, settings: FetchSettings) -> None:
        super().__init__(settings)
        self.pacer = LanePacer(settings.host_min_delay)

    def process(self, element, last_ends=beam.DoFn.StateParam(LAST_ENDS)):
        _lane, item = element
        with self.pacer.turn(last_ends, item.url):
            return super().process(item)  # guarded: a list, a failure as its dead letter


class FetchPages(beam.PTransform):
    """FeedItem -> Page, with failures on the ``dead_letter`` tag; requests to one host
    go ``host_min_delay`` apart across all workers (see ``politeness``)."""

    def __init__(self, settings: FetchSettings) -> None:
        super().__init__()
        self.settings = settings

    def expand(self, items):
        if self.settings.host_min_delay <= 0:
            fetch = beam.ParDo(FetchPageDoFn(self.settings))
        else:
            items = items | "ByHost" >> beam.Map(
                lambda item: (pacing_lane(host_key(item.url)), item)
            ).with_output_types(tuple[int, Any])
            fetch = beam.ParDo(PacedFetchPageDoFn(self.settings))
        return items | "Fetch" >> fetch.with_outputs("dead_letter", main="pages")
