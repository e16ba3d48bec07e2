"""Archived HTTP responses: status, headers and the decoded body; counted skips."""

from __future__ import annotations

import contextlib
import gzip
import zlib
from dataclasses import dataclass

from apache_beam.metrics import Metrics


@dataclass
class HttpResponse:
    """An archived HTTP response: status, lowercased headers, raw body."""

    status: int
    headers: dict[str, str]
    body: bytes


def parse_http_response(block: bytes) -> HttpResponse:
    """Return the response in a WARC response block, or raise ``ValueError``."""
    head, separator, body = block.partition(b"\r\n\r\n")
    if not separator:
        head, separator, body = block.partition(b"\n\n")
    if not separator:
        raise ValueError("no end of HTTP headers")
    lines = head.decode("latin-1").splitlines()
    parts = lines[0].split(" ", 2) if lines else []
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise ValueError(f"not an HTTP status line: {lines[0][:80] if lines else ''!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if colon:
            headers[name.strip().lower()] = value.strip()
    return HttpResponse(int(parts[1]), headers, body)


def dechunk(body: bytes) -> bytes:
    """Return ``body`` without HTTP/1.1 chunk framing, or raise ``ValueError``."""
    out: list[bytes] = []
    position = 0
    while True:
        end = body.find(b"\r\n", position)
        if end < 0:
            raise ValueError("chunk size line missing")
        size = int(body[position:end].split(b";")[0].strip() or b"0", 16)
        if size == 0:
            return b"".join(out)
        out.append(body[end + 2 : end + 2 + size])
        position = end + 2 + size + 2


def http_body(response: HttpResponse) -> bytes:
    """Return the response body with transfer and content encodings undone.

    Common Crawl stores bodies already decoded (and renames the headers to
    ``X-Crawler-*``); other archivers keep them as sent.
    """
    body = response.body
    if "chunked" in response.headers.get("transfer-encoding", "").lower():
        # Archivers sometimes keep the header but store the body de-chunked.
        with contextlib.suppress(ValueError):
            body = dechunk(body)
    encoding = response.headers.get("content-encoding", "").lower().strip()
    try:
        if encoding in ("gzip", "x-gzip") and body[:2] == b"\x1f\x8b":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body, -zlib.MAX_WBITS if body[:1] != b"\x78" else zlib.MAX_WBITS)
        elif encoding == "br":
            import brotli

            body = brotli.decompress(body)
    except Exception as exc:  # each codec raises its own error type
        raise ValueError(f"cannot undo Content-Encoding {encoding}: {exc}") from None
    return body


def count_skip(reason: str) -> None:
    """Count a record skipped on purpose (not HTML, a redirect, filtered out...)."""
    Metrics.counter("wirestream", "skipped").inc()
    Metrics.counter("wirestream.skipped", reason).inc()
