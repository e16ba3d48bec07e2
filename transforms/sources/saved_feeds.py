"""Folders of saved RSS/Atom files: an entry carrying the full article
(``content:encoded``, Atom ``content``) becomes a page to extract; any other entry
becomes an item to fetch, like the stream's."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from html import escape
from urllib.parse import urljoin

import feedparser

from transforms.article import FeedItem, Page
from transforms.dates import feed_entry_time
from transforms.dead_letters import Failure
from transforms.feeds import entry_authors
from transforms.sources.files import FileInput
from transforms.urls import canonicalize_url

SUFFIXES = (".xml", ".rss", ".atom", ".xml.gz", ".rss.gz", ".atom.gz")
FULL_CONTENT_CHARS = 500  # shorter content is a teaser: fetch the page instead
_TAGS = re.compile(r"<[^>]+>")


def full_content(entry) -> str:
    """Return the entry's full HTML content, or "" when it only carries a teaser."""
    values = [c.get("value", "") for c in entry.get("content") or []]
    html = max(values, key=len, default="")
    return html if len(_TAGS.sub("", html).strip()) >= FULL_CONTENT_CHARS else ""


def content_page(title: str, html: str, author: str) -> str:
    """Return a minimal article page around a feed entry's content, for the extractor."""
    byline = f'<meta name="author" content="{escape(author)}">' if author else ""
    return (
        f"<html><head><title>{escape(title)}</title>{byline}</head>"
        f"<body><article><h1>{escape(title)}</h1>{html}</article></body></html>"
    )


def parse_saved_feed(file: FileInput):
    """Yield a Page (full content) or FeedItem (to fetch) per entry, or a Failure."""
    parsed = feedparser.parse(file.data)
    if not parsed.entries:
        problem = parsed.get("bozo_exception") or "no entries"
        yield Failure("read", "bad_feed", file.path, f"{problem.__class__.__name__}: {problem}")
        return
    feed = parsed.feed
    base = feed.get("link") or ""
    feed_url = next(
        (link.get("href") for link in feed.get("links", []) if link.get("rel") == "self"),
        base or file.path,
    )
    for entry in parsed.entries:
        link = (entry.get("link") or entry.get("id") or "").strip()
        url = canonicalize_url(urljoin(base, link)) if link else ""
        if not url.startswith(("http://", "https://")):
            yield Failure("read", "bad_url", link or file.path, f"{file.path}: entry without URL")
            continue
        item = FeedItem(
            url=url,
            feed_url=feed_url,
            title=(entry.get("title") or "").strip(),
            published_at=feed_entry_time(entry),
            language=feed.get("language"),
            tags=[t.get("term") for t in entry.get("tags", []) if t.get("term")],
            publisher=feed.get("title", ""),
            authors=entry_authors(entry),
        )
        html = full_content(entry)
        if html:
            page = content_page(item.title, html, entry.get("author", ""))
            fetched = item.published_at or datetime.now(timezone.utc)
            yield Page(url=url, final_url=url, html=page, fetched_at=fetched, item=item)
        else:
            yield item
