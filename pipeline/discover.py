"""``wirestream feeds discover URL...``: find a site's feeds and sitemaps and print a
profile block for them.

A page's ``<link rel="alternate">`` RSS/Atom links and its host's robots.txt
``Sitemap:`` lines are the candidates; each is fetched and parsed as the stream would,
and only those that parse (with at least one item, page or sitemap) go in the block.
The others are printed as comments with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urljoin

import lxml.html
import requests
import yaml

from transforms.feeds import poll_feed
from transforms.fetch import FetchError, fetch_url
from transforms.robots import robots_url
from transforms.settings import FeedSpec, FetchSettings
from transforms.sitemap_walk import fetch_sitemap
from transforms.sitemap_xml import parse_sitemap

FEED_TYPES = ("application/rss+xml", "application/atom+xml", "application/rss", "application/atom")


@dataclass
class Found:
    """What discovery found: profile entries, and what was left out with why."""

    feeds: list[dict] = field(default_factory=list)
    sitemaps: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)


def feed_links(html: bytes, page_url: str) -> list[str]:
    """Return the RSS/Atom ``<link rel="alternate">`` addresses of a page, in page order."""
    try:
        doc = lxml.html.fromstring(html)
    except (ValueError, lxml.etree.ParserError):
        return []
    base = urljoin(page_url, (doc.xpath("//base/@href") or [""])[0])
    links = []
    for link in doc.xpath("//link[@href]"):
        rel = (link.get("rel") or "").lower().split()
        kind = (link.get("type") or "").lower().split(";")[0].strip()
        if "alternate" in rel and kind in FEED_TYPES:
            links.append(urljoin(base, link.get("href").strip()))
    return list(dict.fromkeys(links))


def robots_sitemaps(session: requests.Session, url: str, settings: FetchSettings) -> list[str]:
    """Return the ``Sitemap:`` addresses in the robots.txt of ``url``'s host."""
    address = robots_url(url)
    try:
        resp = fetch_url(session, address, settings)
    except FetchError:
        return []
    if resp.status != 200:
        return []
    return [link.url for link in parse_sitemap(resp.body, address).children]


def check_feed(session, url: str, settings: FetchSettings, found: Found) -> None:
    try:
        parsed = poll_feed(session, FeedSpec(url=url), settings)
    except FetchError as exc:
        found.rejected.append(f"{url}: {exc.reason}")
        return
    if parsed is None or not parsed.items:
        found.rejected.append(f"{url}: no items ({parsed.problem if parsed else 'HTTP 304'})")
        return
    title = parsed.title or ""
    entry: dict = {"url": url, "name": title} if title else {"url": url}
    if parsed.items[0].language:
        entry["language"] = parsed.items[0].language
    found.feeds.append(entry)
    dated = [i.published_at for i in parsed.items if i.published_at]
    newest = f", newest {max(dated):%Y-%m-%d}" if dated else ""
    found.notes.append(f"{url}: feed, {len(parsed.items)} items{newest}")


def check_sitemap(session, url: str, settings: FetchSettings, found: Found) -> None:
    try:
        got = fetch_sitemap(session, url, settings)
    except FetchError as exc:
        found.rejected.append(f"{url}: {exc.reason}")
        return
    sitemap = got[0] if got else None
    if sitemap is None or not (sitemap.entries or sitemap.children):
        problem = sitemap.problem if sitemap else "HTTP 304"
        found.rejected.append(f"{url}: not a sitemap with pages ({problem or 'empty'})")
        return
    entry: dict = {"url": url}
    names = {e.publication for e in sitemap.entries if e.publication}
    if len(names) == 1:
        entry["name"] = names.pop()
    found.sitemaps.append(entry)
    if sitemap.kind == "index":
        found.notes.append(f"{url}: sitemap index of {len(sitemap.children)} sitemaps")
    else:
        news = sum(1 for e in sitemap.entries if e.title or e.published_at)
        kind = "news sitemap" if news else "sitemap"
        found.notes.append(f"{url}: {kind}, {len(sitemap.entries)} pages")


def discover(session: requests.Session, urls: list[str], settings: FetchSettings) -> Found:
    """Return the feeds and sitemaps that ``urls`` (home pages) lead to and that parse."""
    found = Found()
    feeds: list[str] = []
    sitemaps: list[str] = []
    for url in urls:
        try:
            resp = fetch_url(session, url, settings)
        except FetchError as exc:
            found.rejected.append(f"{url}: {exc.reason}")
        else:
            if resp.status == 200:
                feeds += feed_links(resp.body, resp.url)
            else:
                found.rejected.append(f"{url}: HTTP {resp.status}")
        sitemaps += robots_sitemaps(session, url, settings)
    for url in dict.fromkeys(feeds):
        check_feed(session, url, settings, found)
    for url in dict.fromkeys(sitemaps):
        check_sitemap(session, url, settings, found)
    return found


def profile_block(found: Found) -> str:
    """Return ``found`` as YAML to paste into a profile, with comments saying what each is."""
    lines = [f"# {note}" for note in found.notes]
    lines += [f"# left out: {reason}" for reason in found.rejected]
    data = {k: v for k, v in (("feeds", found.feeds), ("sitemaps", found.sitemaps)) if v}
    body = yaml.safe_dump(data, sort_keys=False, allow_unicode=True) if data else ""
    if not data:
        lines.append("# nothing found: no feed links on the pages and no Sitemap: in robots.txt")
    return "\n".join(lines) + ("\n" if lines else "") + body
