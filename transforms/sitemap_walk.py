"""Fetch sitemaps through the project's fetcher and follow their indexes within bounds.

``fetch_sitemap`` is one conditional GET and parse. ``poll_sitemap`` is the stream's
poll of one source: the root (a news sitemap, an index or a robots.txt), then its newest
sitemaps, at most ``max_sitemaps`` documents and ``max_depth`` levels, each asked with
its own validators. An unchanged index (304) is followed through the sitemaps it named
last time, which its keyed state remembers. A sitemap met twice (an index loop) is read
once and counted. The backfill follows indexes level by level in Beam instead
(``transforms.sources.sitemaps``).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import requests

from transforms.article import FeedItem
from transforms.dead_letters import Failure
from transforms.fetch import FetchError, fetch_url
from transforms.settings import FetchSettings, SitemapSpec
from transforms.sitemap_xml import (
    MAX_BYTES,
    MAX_URLS,
    Sitemap,
    SitemapEntry,
    SitemapLink,
    SitemapTooLarge,
    parse_sitemap,
)
from transforms.urls import canonicalize_url

ACCEPT = "application/xml, text/xml;q=0.9, application/gzip;q=0.8, text/plain;q=0.5, */*;q=0.1"


def fetch_sitemap(
    session: requests.Session,
    url: str,
    settings: FetchSettings,
    validators: dict | None = None,
    max_urls: int = MAX_URLS,
    max_bytes: int = MAX_BYTES,
) -> tuple[Sitemap, dict[str, str]] | None:
    """Return the sitemap at ``url`` and its validators, or None when unchanged (304);
    raise ``FetchError`` for a failed download or a document past ``max_bytes``."""
    headers = {"Accept": ACCEPT}
    if validators and validators.get("etag"):
        headers["If-None-Match"] = validators["etag"]
    if validators and validators.get("last-modified"):
        headers["If-Modified-Since"] = validators["last-modified"]
    capped = settings.model_copy(update={"max_bytes": max_bytes})
    resp = fetch_url(session, url, capped, headers=headers)
    if resp.status == 304:
        return None
    if resp.status != 200:
        raise FetchError(f"http_{resp.status}", f"{url}: HTTP {resp.status}")
    try:
        sitemap = parse_sitemap(resp.body, resp.url, max_urls, max_bytes)
    except SitemapTooLarge as exc:
        raise FetchError("too_large", f"{url}: {exc}") from None
    return sitemap, resp.validators


def entry_item(
    entry: SitemapEntry,
    feed_url: str,
    name: str = "",
    language: str | None = None,
    tags: list[str] | tuple[str, ...] = (),
) -> FeedItem:
    """Return the feed item for a sitemap entry: its news title and date; the source's
    ``name``, ``language`` and ``tags`` first (as for a feed), else the entry's own
    publication name and language; its keywords as more tags."""
    return FeedItem(
        url=canonicalize_url(entry.url),
        feed_url=feed_url,
        title=entry.title,
        published_at=entry.when,
        language=language or entry.language,
        tags=list(dict.fromkeys([*tags, *entry.keywords])),
        publisher=name or entry.publication,
    )


def newest(children: list[SitemapLink], cutoff: datetime | None, limit: int) -> list[SitemapLink]:
    """Return up to ``limit`` of an index's sitemaps, newest ``<lastmod>`` first (undated
    ones last); those modified before ``cutoff`` hold nothing newer and are left out."""
    kept = [c for c in children if c.lastmod is None or cutoff is None or c.lastmod >= cutoff]
    kept.sort(key=lambda c: (c.lastmod is None, -(c.lastmod.timestamp() if c.lastmod else 0)))
    return kept[:limit]


@dataclass
class Poll:
    """One poll of a sitemap source: new items, the state to keep, and what was counted."""

    items: list[FeedItem] = field(default_factory=list)
    state: dict[str, dict] = field(default_factory=dict)
    read: int = 0
    unchanged: int = 0
    loops: int = 0
    truncated: int = 0
    old: int = 0  # pages dated before the window (or undated), not taken
    problems: list[str] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)


def poll_sitemap(
    session: requests.Session,
    spec: SitemapSpec,
    settings: FetchSettings,
    state: dict[str, dict],
    now: datetime,
) -> Poll:
    """Poll ``spec``: the root, then the newest sitemaps it names, within its bounds."""
    cutoff = now - timedelta(hours=spec.recent_hours)
    poll = Poll()
    queue = deque([(spec.url, 0)])
    queued = {spec.url}
    while queue and poll.read + poll.unchanged < spec.max_sitemaps:
        url, depth = queue.popleft()
        known = state.get(url, {})
        try:
            got = fetch_sitemap(session, url, settings, known, spec.max_urls, spec.max_bytes)
        except FetchError as exc:
            poll.failures.append(Failure("poll", exc.reason, url, str(exc)))
            continue
        if got is None:
            poll.unchanged += 1
            poll.state[url] = known
            children = [SitemapLink(u) for u in known.get("children", [])]
        else:
            sitemap, validators = got
            poll.read += 1
            poll.truncated += sitemap.truncated
            if sitemap.problem:
                poll.problems.append(f"{url}: {sitemap.problem}")
            for entry in sitemap.entries:
                when = entry.when
                if (when is None and not spec.keep_undated) or (when is not None and when < cutoff):
                    poll.old += 1
                else:
                    item = entry_item(entry, spec.url, spec.name, spec.language, spec.tags)
                    poll.items.append(item)
            children = newest(sitemap.children, cutoff, spec.max_sitemaps)
            poll.state[url] = validators | (
                {"children": [c.url for c in children]} if children else {}
            )
        if depth >= spec.max_depth:
            poll.truncated += len(children)
            continue
        for child in children:
            if child.url in queued:
                poll.loops += 1
            else:
                queued.add(child.url)
                queue.append((child.url, depth + 1))
    return poll
