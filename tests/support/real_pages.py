"""WARC files of real news pages (``../shared/bench/``), each record under its own URL.

Tests and benchmarks build archives of any size from the 127 real article pages in
``fundus-dev`` and ``article-extraction``: record ``i`` is page ``i % 127`` at
``https://site<h>.example/<i>/<name>``. Canonical links and ``og:url`` are removed,
so every record is a distinct article (a document of its own in the index).
"""

from __future__ import annotations

import gzip
import io
import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

from transforms.walls import find_paywall

_CANONICAL = re.compile(
    rb"<link\b[^>]*\brel\s*=\s*[\"']?canonical\b[^>]*>"
    rb"|<meta\b[^>]*\b(?:property|name)\s*=\s*[\"']?(?:og:url|twitter:url)\b[^>]*>",
    re.IGNORECASE,
)
CRAWLED = datetime(2026, 3, 1, tzinfo=timezone.utc)


def real_page_files(shared: Path) -> list[Path]:
    """Return the real article pages of ``../shared/bench`` (gzipped HTML), in a stable
    order: all but the two paywall teasers of ``article-extraction`` (WSJ, 67 and 88 words
    ending in "..."), which the pipeline rightly refuses (``extract:paywall``)."""
    bench = shared / "bench"
    files = sorted((bench / "fundus-dev" / "html").glob("*.html.gz"))
    extraction = bench / "article-extraction"
    truth = json.loads((extraction / "ground-truth.json").read_text(encoding="utf-8"))
    for page in sorted((extraction / "html").glob("*.html.gz")):
        words = len(truth[page.name.removesuffix(".html.gz")]["articleBody"].split())
        if not find_paywall(gzip.decompress(page.read_bytes()).decode("utf-8", "replace"), words):
            files.append(page)
    return files


def record_url(number: int, page: Path, hosts: int) -> str:
    """Return the URL of record ``number`` (page ``page``) spread over ``hosts`` hosts."""
    stem = page.name.removesuffix(".html.gz")[:40]
    return f"https://site{number % hosts}.example/{number}/{stem}"


def write_real_warc(path: Path, shared: Path, records: int, hosts: int = 10) -> list[str]:
    """Write ``records`` HTML responses of real pages to ``path`` (gzipped WARC); return the
    URLs in order."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    pages = [
        (page, _CANONICAL.sub(b"", gzip.decompress(page.read_bytes())))
        for page in real_page_files(shared)
    ]
    urls = []
    with open(path, "wb") as handle:
        writer = WARCWriter(handle, gzip=True)
        for number in range(records):
            page, body = pages[number % len(pages)]
            url = record_url(number, page, hosts)
            http = StatusAndHeaders(
                "200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1"
            )
            date = (CRAWLED + timedelta(seconds=number)).strftime("%Y-%m-%dT%H:%M:%SZ")
            record = writer.create_warc_record(
                url,
                "response",
                payload=io.BytesIO(body),
                http_headers=http,
                warc_headers_dict={"WARC-Date": date},
            )
            writer.write_record(record)
            urls.append(url)
    return urls
