"""WARC files built from the sample site's pages, with the awkward records real archives
hold (duplicates, images, redirects, a wrong charset, a record cut off)."""

from __future__ import annotations

import io
import re
from pathlib import Path

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from pipeline.config import REPO_ROOT

SITE = REPO_ROOT / "deploy" / "sample-site"
BASE = "https://news.example"
PAGES = sorted(SITE.glob("**/*.html"))


def page_url(path: Path) -> str:
    return f"{BASE}/{path.relative_to(SITE).as_posix()}"


def page_bytes(path: Path) -> bytes:
    return path.read_bytes().replace(b"{{BASE}}", BASE.encode())


def _response(writer: WARCWriter, url: str, status: str, headers, body: bytes) -> None:
    http = StatusAndHeaders(status, headers, protocol="HTTP/1.1")
    record = writer.create_warc_record(
        url,
        "response",
        payload=io.BytesIO(body),
        http_headers=http,
        warc_headers_dict={"WARC-Date": "2026-03-18T10:00:00Z"},
    )
    writer.write_record(record)


def build_warc(path: Path, gzipped: bool = True, duplicate: bool = True) -> dict[str, int]:
    """Write a WARC of the sample site's pages plus awkward records; return what it holds.

    Beside one response per page: the first page again (a duplicate), a PNG, a
    redirect, a request record, a page whose header names the wrong charset, and
    last a record cut off mid-body (the file ends inside it).
    """
    html = [("Content-Type", "text/html; charset=utf-8")]
    with open(path, "wb") as handle:
        writer = WARCWriter(handle, gzip=gzipped)
        for page in PAGES:
            body = page_bytes(page)
            if "market-hall" in page.name:  # windows-1252 bytes labelled utf-8
                body = re.sub(rb"<meta[^>]*charset[^>]*>", b"", body)
            _response(writer, page_url(page), "200 OK", html, body)
        if duplicate:
            _response(writer, page_url(PAGES[0]), "200 OK", html, page_bytes(PAGES[0]))
        png = (SITE / "harbor-gazette" / "img" / "seawall.png").read_bytes()
        _response(writer, f"{BASE}/img/seawall.png", "200 OK", [("Content-Type", "image/png")], png)
        _response(writer, f"{BASE}/old", "301 Moved", [("Location", page_url(PAGES[1]))], b"")
        request = writer.create_warc_record(
            f"{BASE}/old", "request", payload=io.BytesIO(b"GET /old HTTP/1.1\r\n\r\n")
        )
        writer.write_record(request)
        cut_at = handle.tell()
        _response(writer, f"{BASE}/cut", "200 OK", html, page_bytes(PAGES[2]))
        end = handle.tell()
    data = path.read_bytes()
    if gzipped:  # cut inside the last gzip member: the record cannot be decompressed whole
        path.write_bytes(data[: cut_at + (end - cut_at) // 2])
    else:
        path.write_bytes(data[: end - 4000])
    return {"pages": len(PAGES) + duplicate, "not_html": 1, "redirect": 1}
