"""Sitemaps: news fields, indexes, robots.txt and text lists read right; hostile documents
(entity bombs, XXE, gzip bombs, 60,000 URLs, truncation, loops) are bounded and counted;
a poll over HTTP on 127.0.0.1 is conditional, follows an index's newest sitemaps only,
and keeps going through an unchanged index; discovery prints a block that loads."""

from __future__ import annotations

import gzip
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest
import yaml

from pipeline.config import REPO_ROOT, Settings, load_settings
from transforms.fetch import FetchError, make_session
from transforms.settings import FetchSettings, SitemapSpec
from transforms.sitemap_walk import fetch_sitemap, poll_sitemap
from transforms.sitemap_xml import MAX_URLS, SitemapTooLarge, parse_sitemap

FAST = FetchSettings(allow_private_addresses=True, retries=0, timeout=5, host_min_delay=0)
NOW = datetime(2026, 3, 18, 12, tzinfo=timezone.utc)
URLSET = '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">'
INDEX = '<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'


def news_url(loc: str, when: datetime, title: str = "A title") -> str:
    return (
        f"<url><loc>{loc}</loc><news:news><news:publication><news:name>The Ex</news:name>"
        f"<news:language>en</news:language></news:publication>"
        f"<news:publication_date>{when.isoformat()}</news:publication_date>"
        f"<news:title>{title}</news:title></news:news></url>"
    )


def urlset(*urls: str) -> str:
    return f'<?xml version="1.0" encoding="UTF-8"?>{URLSET}{"".join(urls)}</urlset>'


def index(*children: tuple[str, datetime | None]) -> str:
    parts = "".join(
        f"<sitemap><loc>{loc}</loc>"
        + (f"<lastmod>{when.date().isoformat()}</lastmod>" if when else "")
        + "</sitemap>"
        for loc, when in children
    )
    return f'<?xml version="1.0"?>{INDEX}{parts}</sitemapindex>'


XML = {"Content-Type": "application/xml"}


def test_news_sitemap_fields_and_gzip():
    xml = urlset(
        news_url("https://ex.org/a.html", NOW, "Storm &amp; flood"),
        "<url><loc>/b.html</loc><lastmod>2026-03-02</lastmod></url>",
        "<url><loc>javascript:alert(1)</loc></url>",
    )
    sitemap = parse_sitemap(gzip.compress(xml.encode()), "https://ex.org/news.xml.gz")
    assert sitemap.kind == "urlset" and not sitemap.degraded
    first, second = sitemap.entries
    assert (first.url, first.title, first.publication, first.language) == (
        "https://ex.org/a.html",
        "Storm & flood",
        "The Ex",
        "en",
    )
    assert first.when == NOW
    assert second.url == "https://ex.org/b.html" and second.when.isoformat() == (
        "2026-03-02T00:00:00+00:00"
    )


def test_index_robots_and_text_lists():
    sitemap = parse_sitemap(
        index(("https://ex.org/2026.xml", NOW), ("https://ex.org/old.xml", None)).encode(),
        "https://ex.org/index.xml",
    )
    assert sitemap.kind == "index"
    assert [(c.url, c.lastmod) for c in sitemap.children] == [
        ("https://ex.org/2026.xml", NOW.replace(hour=0)),
        ("https://ex.org/old.xml", None),
    ]
    robots = (
        b"User-agent: *\nDisallow: /private\nSitemap: https://ex.org/news.xml\nSitemap: /s.xml\n"
    )
    sitemap = parse_sitemap(robots, "https://ex.org/robots.txt")
    assert sitemap.kind == "robots"
    assert [c.url for c in sitemap.children] == ["https://ex.org/news.xml", "https://ex.org/s.xml"]
    text = parse_sitemap(b"https://ex.org/a\nnot a url\nhttps://ex.org/b\n", "https://ex.org/s.txt")
    assert [e.url for e in text.entries] == ["https://ex.org/a", "https://ex.org/b"]
    assert text.degraded and "1 lines" in text.problem


@pytest.mark.parametrize(
    "document",
    [
        # billion laughs: entities are never expanded, the document is refused
        '<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
        + "".join(
            f'<!ENTITY {n} "{("&" + p + ";") * 10}">'
            for p, n in zip("abcdefgh", "bcdefghi", strict=True)
        )
        + f"]>{URLSET}<url><loc>https://ex.org/&i;</loc></url></urlset>",
        # XXE: an external entity naming a local file
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        f"{URLSET}<url><loc>https://ex.org/&e;</loc></url></urlset>",
    ],
    ids=["billion-laughs", "xxe"],
)
def test_entity_documents_are_refused(document):
    sitemap = parse_sitemap(document.encode(), "https://ex.org/s.xml")
    assert sitemap.entries == [] and "entities" in sitemap.problem


def test_malformed_html_and_oversized_documents():
    cut = urlset(news_url("https://ex.org/a", NOW), news_url("https://ex.org/b", NOW))[:-40]
    sitemap = parse_sitemap(cut.encode(), "https://ex.org/s.xml")
    assert [e.url for e in sitemap.entries] == ["https://ex.org/a"]  # what parsed is kept
    assert "malformed XML" in sitemap.problem
    page = parse_sitemap(b"<!doctype html><html><body>Not found</body></html>", "https://ex.org/s")
    assert page.kind == "unknown" and page.entries == [] and page.problem
    page = parse_sitemap(b"<html><body>Not found</body></html>", "https://ex.org/s")
    assert page.kind == "unknown" and "not a sitemap (root element <html>)" in page.problem
    many = urlset(*(f"<url><loc>https://ex.org/{n}</loc></url>" for n in range(MAX_URLS + 10_000)))
    sitemap = parse_sitemap(many.encode(), "https://ex.org/s.xml")
    assert len(sitemap.entries) == MAX_URLS and sitemap.truncated == 10_000
    bomb = gzip.compress(b" " * (60 << 20))  # 60 MiB of spaces in 60 KB
    assert len(bomb) < 100_000
    with pytest.raises(SitemapTooLarge):
        parse_sitemap(bomb, "https://ex.org/s.xml.gz")


def test_a_gzip_bomb_over_http_is_a_counted_failure(web):
    bomb = gzip.compress(b"<urlset>" + b" " * (60 << 20))
    url = web.add_route("/bomb.xml.gz", bomb, {"Content-Type": "application/gzip"})
    with pytest.raises(FetchError) as caught:
        fetch_sitemap(make_session(FAST), url, FAST)
    assert caught.value.reason == "too_large"
    huge = web.add_route("/huge.xml", b"<urlset>" + b" " * 2_000_000, XML)
    with pytest.raises(FetchError) as caught:
        fetch_sitemap(make_session(FAST), huge, FAST, max_bytes=1_000_000)
    assert caught.value.reason == "too_large"


def test_news_sitemap_poll_is_conditional_and_keeps_the_window(web):
    url = web.url("/news.xml")
    web.add_route(
        "/news.xml",
        urlset(
            news_url(web.url("/fresh.html"), NOW - timedelta(hours=3)),
            news_url(web.url("/old.html"), NOW - timedelta(days=9)),
            f"<url><loc>{web.url('/undated.html')}</loc></url>",
        ),
        XML,
    )
    spec = SitemapSpec(url=url, name="Ex", tags=["local"])
    session = make_session(FAST)
    first = poll_sitemap(session, spec, FAST, {}, NOW)
    assert [i.url for i in first.items] == [web.url("/fresh.html")]
    (item,) = first.items
    assert (item.publisher, item.language, item.tags, item.feed_url) == ("Ex", "en", ["local"], url)
    assert first.old == 2 and first.read == 1 and first.state[url].get("etag")
    web.clear_requests()
    again = poll_sitemap(session, spec, FAST, first.state, NOW)
    assert again.items == [] and again.unchanged == 1
    assert [r.status for r in web.requests] == [304]
    undated = poll_sitemap(session, spec.model_copy(update={"keep_undated": True}), FAST, {}, NOW)
    assert {i.url for i in undated.items} == {web.url("/fresh.html"), web.url("/undated.html")}


def test_index_poll_reads_the_newest_sitemaps_and_follows_an_unchanged_index(web):
    day = timedelta(days=1)
    for name in ("today", "yesterday", "lastyear"):
        web.add_route(f"/{name}.xml", urlset(news_url(web.url(f"/{name}-1.html"), NOW)), XML)
    web.add_route(
        "/index.xml",
        index(
            (web.url("/lastyear.xml"), NOW - 300 * day),
            (web.url("/yesterday.xml"), NOW - day),
            (web.url("/today.xml"), NOW),
        ),
        XML,
    )
    spec = SitemapSpec(url=web.url("/index.xml"), max_sitemaps=3)
    session = make_session(FAST)
    first = poll_sitemap(session, spec, FAST, {}, NOW)
    paths = [r.path for r in web.requests]
    assert paths == ["/index.xml", "/today.xml", "/yesterday.xml"]  # newest first, old one never
    assert {i.url for i in first.items} == {web.url("/today-1.html"), web.url("/yesterday-1.html")}
    web.clear_requests()
    again = poll_sitemap(session, spec, FAST, first.state, NOW)
    assert [(r.path, r.status) for r in web.requests] == [
        ("/index.xml", 304),
        ("/today.xml", 304),  # still asked: an index need not change when its sitemaps do
        ("/yesterday.xml", 304),
    ]
    assert again.unchanged == 3 and again.items == []


def test_index_loops_robots_roots_and_the_document_budget(web):
    web.add_route("/a.xml", index((web.url("/b.xml"), NOW)), XML)
    web.add_route("/b.xml", index((web.url("/a.xml"), NOW), (web.url("/news.xml"), NOW)), XML)
    web.add_route("/news.xml", urlset(news_url(web.url("/story.html"), NOW)), XML)
    loop = poll_sitemap(make_session(FAST), SitemapSpec(url=web.url("/a.xml")), FAST, {}, NOW)
    assert loop.loops == 1 and [i.url for i in loop.items] == [web.url("/story.html")]
    web.add_route(
        "/robots.txt",
        f"User-agent: *\nSitemap: {web.url('/a.xml')}\n",
        {"Content-Type": "text/plain"},
    )
    robots = SitemapSpec(url=web.url("/robots.txt"))
    assert [i.url for i in poll_sitemap(make_session(FAST), robots, FAST, {}, NOW).items] == [
        web.url("/story.html")
    ]
    web.clear_requests()
    budget = SitemapSpec(url=web.url("/robots.txt"), max_sitemaps=2)
    capped = poll_sitemap(make_session(FAST), budget, FAST, {}, NOW)
    assert len(web.requests) == 2 and capped.items == []
    shallow = SitemapSpec(url=web.url("/a.xml"), max_depth=1)
    deep = poll_sitemap(make_session(FAST), shallow, FAST, {}, NOW)
    assert deep.items == [] and deep.truncated == 2  # b.xml's two sitemaps, one level too deep


def test_a_missing_child_is_a_failure_and_the_rest_is_read(web):
    web.add_route(
        "/index.xml", index((web.url("/gone.xml"), NOW), (web.url("/news.xml"), NOW)), XML
    )
    web.add_route("/news.xml", urlset(news_url(web.url("/story.html"), NOW)), XML)
    poll = poll_sitemap(make_session(FAST), SitemapSpec(url=web.url("/index.xml")), FAST, {}, NOW)
    assert [f.reason for f in poll.failures] == ["http_404"]
    assert [i.url for i in poll.items] == [web.url("/story.html")]


def test_sitemaps_load_beside_feeds_and_may_not_repeat_one(tmp_path):
    profile = tmp_path / "p.yaml"
    profile.write_text(
        "feeds: [{url: 'https://ex.org/feed.xml'}]\n"
        "sitemaps: [{url: 'https://ex.org/news.xml', recent_hours: 24}]\n"
    )
    settings = load_settings(profile)
    assert [s.url for s in settings.sources] == [
        "https://ex.org/feed.xml",
        "https://ex.org/news.xml",
    ]
    assert isinstance(settings.sources[1], SitemapSpec) and settings.sources[1].interval == 600
    with pytest.raises(ValueError, match="listed twice"):
        Settings.model_validate(
            {"feeds": [{"url": "https://ex.org/x"}], "sitemaps": [{"url": "https://ex.org/x"}]}
        )


def test_discover_prints_a_profile_block_of_what_parses(sample_site, tmp_path):
    sitemap = sample_site.url("valley-ledger/news-sitemap.xml")
    sample_site.add_route(
        "/robots.txt",
        f"User-agent: *\nAllow: /\nSitemap: {sitemap}\nSitemap: {sample_site.url('gone.xml')}\n",
        {"Content-Type": "text/plain"},
    )
    profile = tmp_path / "p.yaml"
    profile.write_text("fetch: {allow_private_addresses: true, retries: 0, host_min_delay: 0}\n")
    page = sample_site.url("harbor-gazette/2026/03/seawall-funding.html")
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "feeds", "discover", page, "--config", str(profile)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    block = yaml.safe_load(done.stdout)
    assert block["feeds"] == [
        {
            "url": sample_site.url("harbor-gazette/feed.xml"),
            "name": "Harbor Gazette",
            "language": "en-gb",
        }
    ]
    assert block["sitemaps"] == [{"url": sitemap, "name": "Valley Ledger"}]
    assert f"left out: {sample_site.url('gone.xml')}: http_404" in done.stdout
    assert "news sitemap, 3 pages" in done.stdout
    (tmp_path / "found.yaml").write_text(done.stdout)
    settings = load_settings(tmp_path / "found.yaml")  # pasted as is, it is a valid profile
    assert [s.url for s in settings.sources] == [block["feeds"][0]["url"], sitemap]
