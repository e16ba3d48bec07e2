"""Read sitemaps: a ``<urlset>`` (with Google News ``news:`` fields), a ``<sitemapindex>``,
a robots.txt's ``Sitemap:`` lines, or a plain-text list; bytes in, entries out.

Parsed by hand on lxml's streaming ``iterparse`` rather than ultimate-sitemap-parser:
that library keeps no ``<lastmod>`` of an index's sitemaps (a backfill walks an archive
by them, ``--since``), and it walks an index by fetching on its own, outside our fetcher's
address checks, politeness and conditional GETs. Entities are never expanded and no DTD
or network is loaded (a billion-laughs or XXE document reads as malformed); gzip is
inflated to a cap (a bomb stops there), and a file's URLs are capped at the protocol's
50,000, the rest counted.
"""

from __future__ import annotations

import io
import re
import zlib
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urljoin, urlsplit

from lxml import etree
from protego import Protego

from transforms.dates import parse_w3c

MAX_URLS = 50_000  # the sitemaps.org limit per file
MAX_BYTES = 52_428_800  # 50 MiB uncompressed, the same limit
_ENTITY = re.compile(rb"<!ENTITY", re.I)  # no sitemap needs one; a bomb or XXE always does


class SitemapTooLarge(ValueError):
    """A sitemap inflates past the byte cap."""


@dataclass(frozen=True)
class SitemapLink:
    """A sitemap named by an index or a robots.txt, with the index's ``<lastmod>``."""

    url: str
    lastmod: datetime | None = None


@dataclass(frozen=True)
class SitemapEntry:
    """A page a ``<urlset>`` lists, with its ``news:`` fields when it has them."""

    url: str
    lastmod: datetime | None = None
    title: str = ""
    published_at: datetime | None = None
    language: str | None = None
    publication: str = ""
    keywords: tuple[str, ...] = ()

    @property
    def when(self) -> datetime | None:
        """The entry's date: its publication date, else its ``<lastmod>``."""
        return self.published_at or self.lastmod


@dataclass
class Sitemap:
    """What one document holds: ``kind`` is urlset, index, robots, text or unknown."""

    kind: str
    entries: list[SitemapEntry] = field(default_factory=list)
    children: list[SitemapLink] = field(default_factory=list)
    truncated: int = 0  # URLs past the cap, not kept
    problem: str = ""  # why it is malformed (what parsed is kept)

    @property
    def degraded(self) -> bool:
        return bool(self.problem)


def inflate(data: bytes, max_bytes: int = MAX_BYTES) -> bytes:
    """Return ``data`` gunzipped when it is gzip (``.xml.gz``), raising past ``max_bytes``."""
    if data[:2] != b"\x1f\x8b":
        if len(data) > max_bytes:
            raise SitemapTooLarge(f"{len(data)} bytes, more than {max_bytes}")
        return data
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, max_bytes + 1)
    except zlib.error as exc:
        raise SitemapTooLarge(f"not valid gzip: {exc}") from None
    if len(out) > max_bytes:
        raise SitemapTooLarge(f"inflates past {max_bytes} bytes")
    return out


def _name(tag) -> str:
    return tag.rsplit("}", 1)[-1].lower() if isinstance(tag, str) else ""


def _text(element, *path: str) -> str:
    """Return the text of the first descendant along ``path`` (local names), or ""."""
    for name in path:
        element = next((c for c in element if _name(c.tag) == name), None)
        if element is None:
            return ""
    return (element.text or "").strip()


def _entry(element, base: str) -> SitemapEntry | None:
    loc = _text(element, "loc")
    url = urljoin(base, loc) if loc else ""
    if not url.startswith(("http://", "https://")):
        return None
    keywords = _text(element, "news", "keywords")
    return SitemapEntry(
        url=url,
        lastmod=parse_w3c(_text(element, "lastmod")),
        title=_text(element, "news", "title"),
        published_at=parse_w3c(_text(element, "news", "publication_date")),
        language=_text(element, "news", "publication", "language") or None,
        publication=_text(element, "news", "publication", "name"),
        keywords=tuple(k.strip() for k in keywords.split(",") if k.strip()),
    )


def _read_xml(data: bytes, base: str, max_urls: int) -> Sitemap:
    result = Sitemap("unknown")
    if _ENTITY.search(data, 0, 65_536):
        result.problem = "declares XML entities (refused: a sitemap never needs one)"
        return result
    events = etree.iterparse(
        io.BytesIO(data),
        events=("start", "end"),
        resolve_entities=False,
        load_dtd=False,
        no_network=True,
        huge_tree=False,
        remove_comments=True,
        recover=False,
    )
    root = ""
    try:
        for event, element in events:
            name = _name(element.tag)
            if event == "start":
                root = root or name
                continue
            if name not in ("url", "sitemap") or element.getparent() is None:
                continue
            if len(result.entries) + len(result.children) >= max_urls:
                result.truncated += 1
            elif name == "url" and root == "urlset":
                entry = _entry(element, base)
                if entry:
                    result.entries.append(entry)
            elif name == "sitemap" and root == "sitemapindex":
                loc = _text(element, "loc")
                if loc:
                    link = SitemapLink(urljoin(base, loc), parse_w3c(_text(element, "lastmod")))
                    result.children.append(link)
            element.clear()  # constant memory: drop what was read, and its earlier siblings
            parent = element.getparent()
            while element.getprevious() is not None:
                del parent[0]
    except etree.XMLSyntaxError as exc:
        result.problem = f"malformed XML: {exc}"
    result.kind = {"urlset": "urlset", "sitemapindex": "index"}.get(root, "unknown")
    if result.kind == "unknown" and not result.problem:
        result.problem = f"not a sitemap (root element <{root or '?'}>)"
    return result


def parse_sitemap(
    content: bytes, url: str, max_urls: int = MAX_URLS, max_bytes: int = MAX_BYTES
) -> Sitemap:
    """Return what the document fetched from ``url`` lists (raises ``SitemapTooLarge``)."""
    data = inflate(content, max_bytes)
    head = data[:512].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"<"):
        return _read_xml(data, url, max_urls)
    text = data.decode("utf-8", errors="replace")
    if urlsplit(url).path.endswith("/robots.txt"):
        links = [SitemapLink(urljoin(url, u.strip())) for u in Protego.parse(text).sitemaps]
        kept = links[:max_urls]
        return Sitemap("robots", children=kept, truncated=len(links) - len(kept))
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    urls = [line for line in lines if line.startswith(("http://", "https://"))]
    result = Sitemap("text", entries=[SitemapEntry(u) for u in urls[:max_urls]])
    result.truncated = max(len(urls) - max_urls, 0)
    if len(urls) < len(lines):
        result.problem = f"{len(lines) - len(urls)} lines are not http(s) URLs"
    return result
