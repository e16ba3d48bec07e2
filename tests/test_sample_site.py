"""The fixture HTTP server and the bundled sample site, over real loopback HTTP."""

from __future__ import annotations

import gzip
import http.client
import re
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from email.utils import formatdate
from pathlib import Path
from typing import NamedTuple

import feedparser
import pytest

from pipeline.services.sample_site import (
    SAMPLE_SITE_ROOT,
    FixtureServer,
    feed_urls,
    load_manifest,
    serve_sample_site,
)

# No proxies: every request in this module goes straight to 127.0.0.1.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
CP1252_PAGE = "valley-ledger/news/2026-03-09-market-hall-reopens.html"
SHARED_PAGE = "valley-ledger/news/2026-03-13-rail-link-consultation.html"


class Reply(NamedTuple):
    status: int
    headers: http.client.HTTPMessage
    body: bytes
    url: str


def fetch(url: str, headers: dict[str, str] | None = None, method: str = "GET") -> Reply:
    """One request with urllib; HTTP errors (304, 404, ...) are returned, not raised."""
    request = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with OPENER.open(request, timeout=10) as response:
            return Reply(response.status, response.headers, response.read(), response.url)
    except urllib.error.HTTPError as err:
        return Reply(err.code, err.headers, err.read(), url)


@pytest.fixture(scope="module")
def site() -> Iterator[FixtureServer]:
    server = serve_sample_site()
    yield server
    server.stop()


@pytest.fixture()
def fresh_log(site: FixtureServer) -> FixtureServer:
    site.clear_requests()
    return site


def article_paths() -> list[str]:
    """Every article page in the sample site, relative to its root."""
    return sorted(
        p.relative_to(SAMPLE_SITE_ROOT).as_posix()
        for p in SAMPLE_SITE_ROOT.rglob("*.html")
        if p.parent.name not in {"img"}
    )


def parsed_feeds(site: FixtureServer) -> dict[str, feedparser.FeedParserDict]:
    """Each manifest feed fetched over HTTP and parsed by feedparser, by publisher name."""
    feeds = {}
    for feed in feed_urls(site):
        reply = fetch(feed["url"])
        assert reply.status == 200, feed
        feeds[feed["name"]] = feedparser.parse(
            reply.body, response_headers={"content-type": reply.headers["Content-Type"]}
        )
    return feeds


# --------------------------------------------------------------------------- server basics
def test_base_url_is_loopback_with_real_port(site: FixtureServer) -> None:
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", site.base_url)
    assert site.port > 0
    assert site.url("/a/b.html") == site.base_url + "/a/b.html" == site.url("a/b.html")


def test_refuses_non_loopback_host(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="loopback"):
        FixtureServer(tmp_path, host="0.0.0.0")


def test_base_url_before_start_raises(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError):
        _ = FixtureServer(tmp_path).base_url


def test_context_manager_stops_server(tmp_path: Path) -> None:
    (tmp_path / "hello.txt").write_text("hi {{BASE}}\n", encoding="utf-8")
    with FixtureServer(tmp_path) as server:
        reply = fetch(server.url("hello.txt"))
        assert reply.body == f"hi {server.base_url}\n".encode()
        assert reply.headers["Content-Type"] == "text/plain; charset=utf-8"
        port = server.port
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass


def test_placeholder_replaced_in_feeds_and_pages(site: FixtureServer) -> None:
    for path in ["harbor-gazette/feed.xml", "northwind-times/atom.xml", *article_paths()]:
        body = fetch(site.url(path)).body
        assert b"{{BASE}}" not in body, path
        assert site.base_url.encode() in body, path


def test_content_types_by_kind(site: FixtureServer) -> None:
    def kind(path: str) -> str:
        return fetch(site.url(path)).headers["Content-Type"]

    assert kind("harbor-gazette/feed.xml") == "application/rss+xml; charset=utf-8"
    assert kind("northwind-times/atom.xml") == "application/atom+xml; charset=utf-8"
    assert kind("harbor-gazette/2026/03/port-expansion.html") == "text/html; charset=utf-8"
    assert kind("harbor-gazette/img/port-expansion.png") == "image/png"


def test_missing_file_is_404(site: FixtureServer) -> None:
    assert fetch(site.url("harbor-gazette/no-such-story.html")).status == 404
    assert fetch(site.url("harbor-gazette/")).status == 404  # no index.html


def test_path_traversal_and_sidecars_are_not_served(site: FixtureServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", site.port, timeout=10)
    try:
        for raw in ["/../../pyproject.toml", "/%2e%2e/%2e%2e/setup.py"]:
            conn.request("GET", raw)
            response = conn.getresponse()
            response.read()
            assert response.status == 404, raw
    finally:
        conn.close()
    assert fetch(site.url("harbor-gazette/feed.xml.headers")).status == 404


def test_query_string_is_ignored_for_files(site: FixtureServer) -> None:
    path = "northwind-times/2026/03/16/startup-funding-round.html"
    plain = fetch(site.url(path))
    tracked = fetch(site.url(path + "?utm_source=rss&utm_medium=feed"))
    assert tracked.status == 200
    assert tracked.body == plain.body


def test_head_has_headers_but_no_body(site: FixtureServer) -> None:
    url = site.url("harbor-gazette/2026/03/port-expansion.html")
    get, head = fetch(url), fetch(url, method="HEAD")
    assert head.status == 200
    assert head.body == b""
    assert int(head.headers["Content-Length"]) == len(get.body)
    assert head.headers["ETag"] == get.headers["ETag"]


# --------------------------------------------------------------------------- caching
def test_if_none_match_gives_304_and_is_logged(fresh_log: FixtureServer) -> None:
    site = fresh_log
    url = site.url("valley-ledger/feed.xml")
    first = fetch(url)
    etag = first.headers["ETag"]
    assert first.status == 200 and etag and first.headers["Last-Modified"]

    second = fetch(url, headers={"If-None-Match": etag})
    assert second.status == 304
    assert second.body == b""
    assert second.headers["ETag"] == etag

    assert fetch(url, headers={"If-None-Match": '"something-else"'}).status == 200

    log = [r for r in site.requests if r.path == "/valley-ledger/feed.xml"]
    assert [r.status for r in log] == [200, 304, 200]
    assert log[0].method == "GET" and "If-None-Match" not in log[0].headers
    assert log[1].headers["if-none-match"] == etag


def test_if_modified_since_gives_304(site: FixtureServer) -> None:
    url = site.url("northwind-times/atom.xml")
    last_modified = fetch(url).headers["Last-Modified"]
    assert fetch(url, headers={"If-Modified-Since": last_modified}).status == 304
    assert fetch(url, headers={"If-Modified-Since": formatdate(0, usegmt=True)}).status == 200
    assert fetch(url, headers={"If-Modified-Since": "not a date"}).status == 200


def test_if_none_match_takes_precedence_over_if_modified_since(site: FixtureServer) -> None:
    url = site.url("northwind-times/atom.xml")
    last_modified = fetch(url).headers["Last-Modified"]
    headers = {"If-None-Match": '"stale"', "If-Modified-Since": last_modified}
    assert fetch(url, headers=headers).status == 200


# --------------------------------------------------------------------------- encodings
def test_gzip_when_accepted(site: FixtureServer) -> None:
    url = site.url("harbor-gazette/2026/03/seawall-funding.html")
    plain = fetch(url)
    zipped = fetch(url, headers={"Accept-Encoding": "gzip, deflate"})
    assert "Content-Encoding" not in plain.headers
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert zipped.headers["Vary"] == "Accept-Encoding"
    assert int(zipped.headers["Content-Length"]) == len(zipped.body) < len(plain.body)
    assert gzip.decompress(zipped.body) == plain.body
    assert "Content-Encoding" not in fetch(url, headers={"Accept-Encoding": "gzip;q=0"}).headers


def test_images_are_not_gzipped(site: FixtureServer) -> None:
    reply = fetch(site.url("valley-ledger/img/rail-link.png"), {"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in reply.headers
    assert reply.body.startswith(b"\x89PNG\r\n\x1a\n")


def test_non_utf8_page_declares_and_serves_its_charset(site: FixtureServer) -> None:
    reply = fetch(site.url(CP1252_PAGE))
    assert reply.headers["Content-Type"] == "text/html; charset=windows-1252"
    assert b'<meta charset="windows-1252" />' in reply.body
    with pytest.raises(UnicodeDecodeError):
        reply.body.decode("utf-8")
    text = reply.body.decode("cp1252")
    for needle in ["Renée Lefèvre", "crème brûlée", "£3.4 million", "Aberwen’s", "€4.50"]:
        assert needle in text
    assert site.base_url in text  # placeholder substituted on bytes


# --------------------------------------------------------------------------- extra headers
def test_sidecar_headers_are_sent(site: FixtureServer) -> None:
    reply = fetch(site.url("harbor-gazette/feed.xml"))
    assert reply.headers["Cache-Control"] == "public, max-age=300"
    assert reply.headers["X-Publisher"] == "Harbor Gazette"
    assert "X-Publisher" not in fetch(site.url("valley-ledger/feed.xml")).headers


def test_sidecar_can_override_content_type(tmp_path: Path) -> None:
    (tmp_path / "page.html").write_bytes(b"<html><body>caf\xe9 {{BASE}}</body></html>")
    (tmp_path / "page.html.headers").write_text(
        "# comment\nContent-Type: text/html; charset=ISO-8859-1\nX-Test:  yes \n",
        encoding="utf-8",
    )
    with FixtureServer(tmp_path) as server:
        reply = fetch(server.url("page.html"))
    assert reply.headers["Content-Type"] == "text/html; charset=ISO-8859-1"
    assert reply.headers["X-Test"] == "yes"
    assert reply.body.decode("latin-1").startswith("<html><body>café http://127.0.0.1:")


def test_add_route_serves_bytes_with_headers(site: FixtureServer) -> None:
    body = "<html><head><meta charset='utf-8'></head><body>Zürich</body></html>".encode("cp1252")
    url = site.add_route(
        "/tests/wrong-charset.html", body, {"Content-Type": "text/html; charset=utf-8"}
    )
    try:
        reply = fetch(url)
        assert reply.status == 200
        assert reply.body == body
        assert reply.headers["Content-Type"] == "text/html; charset=utf-8"
        assert fetch(url, headers={"If-None-Match": reply.headers["ETag"]}).status == 304
    finally:
        site.remove_route("/tests/wrong-charset.html")
    assert fetch(url).status == 404


def test_add_route_redirect_and_error_status(site: FixtureServer) -> None:
    target = site.url("harbor-gazette/2026/03/ferry-strike-averted.html")
    site.add_route("/go/ferry", b"", {"Location": target}, status=301)
    site.add_route("/tests/boom", b"upstream exploded", {"Content-Type": "text/plain"}, status=503)
    redirected = fetch(site.url("/go/ferry"))
    assert redirected.status == 200
    assert redirected.url == target
    failed = fetch(site.url("/tests/boom"))
    assert (failed.status, failed.body) == (503, b"upstream exploded")


def test_add_route_large_body_and_route_beats_file(site: FixtureServer) -> None:
    big = b"x" * 3_000_000
    url = site.add_route("/tests/huge.bin", big)
    assert len(fetch(url).body) == 3_000_000
    site.add_route("/valley-ledger/feed.xml?v=2", b"<rss/>", {"Content-Type": "text/xml"})
    try:
        assert fetch(site.url("/valley-ledger/feed.xml?v=2")).body == b"<rss/>"
        assert fetch(site.url("/valley-ledger/feed.xml")).body != b"<rss/>"
    finally:
        site.remove_route("/valley-ledger/feed.xml?v=2")


def test_request_log_is_thread_safe(fresh_log: FixtureServer) -> None:
    url = fresh_log.url("northwind-times/2026/03/12/university-research-grant.html")
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(lambda _: fetch(url).status, range(40)))
    assert statuses == [200] * 40
    assert len(fresh_log.requests) == 40
    assert {(r.method, r.status) for r in fresh_log.requests} == {("GET", 200)}


# --------------------------------------------------------------------------- sample site
def test_manifest_and_feed_urls(site: FixtureServer) -> None:
    feeds = feed_urls(site)
    assert [f["name"] for f in feeds] == [
        "harbor-gazette",
        "northwind-times",
        "valley-ledger",
        "broken",
    ]
    assert all(f["url"].startswith(site.base_url + "/") for f in feeds)
    assert all(set(f) == {"name", "url", "language"} and f["language"] == "en" for f in feeds)
    assert {p["format"] for p in load_manifest()} == {"rss", "atom"}


def test_feedparser_parses_every_feed(site: FixtureServer) -> None:
    feeds = parsed_feeds(site)
    expected = {"harbor-gazette": 5, "northwind-times": 4, "valley-ledger": 3}
    for name, count in expected.items():
        parsed = feeds[name]
        assert not parsed.bozo, (name, parsed.get("bozo_exception"))
        assert len(parsed.entries) == count, name
        for entry in parsed.entries:
            assert entry.title and entry.link and entry.id and entry.author, (name, entry)
            assert entry.published_parsed.tm_year == 2026
            assert entry.summary
    assert feeds["northwind-times"].version == "atom10"
    assert feeds["harbor-gazette"].version == feeds["valley-ledger"].version == "rss20"


def test_broken_feed_is_bozo_but_yields_entries(site: FixtureServer) -> None:
    parsed = parsed_feeds(site)["broken"]
    assert parsed.bozo
    assert 1 <= len(parsed.entries) <= 2
    assert all(e.link.startswith(site.base_url) for e in parsed.entries)


def test_every_feed_link_resolves_to_an_html_page(site: FixtureServer) -> None:
    links = {e.link for feed in parsed_feeds(site).values() for e in feed.entries}
    assert {link.split("?")[0] for link in links} == {site.url(p) for p in article_paths()}
    for link in links:
        reply = fetch(link)
        assert reply.status == 200, link
        assert reply.headers["Content-Type"].startswith("text/html"), link


def test_tracking_query_and_cross_feed_duplicate(site: FixtureServer) -> None:
    feeds = parsed_feeds(site)
    tracked = [e.link for e in feeds["northwind-times"].entries if "utm_source=rss" in e.link]
    assert len(tracked) == 1 and tracked[0].endswith("?utm_source=rss&utm_medium=feed")
    shared = site.url(SHARED_PAGE)
    assert shared in {e.link for e in feeds["harbor-gazette"].entries}
    assert shared in {e.link for e in feeds["valley-ledger"].entries}


@pytest.mark.parametrize("path", article_paths())
def test_article_pages_look_like_news_pages(site: FixtureServer, path: str) -> None:
    reply = fetch(site.url(path))
    charset = reply.headers.get_content_charset()
    html = reply.body.decode(charset)
    own_url = site.url(path)
    assert f'<link rel="canonical" href="{own_url}"' in html
    assert f'property="og:url" content="{own_url}"' in html
    markers = [
        'property="og:title"',
        'property="article:published_time" content="2026-',
        '<meta name="author"',
        "<figcaption>",
        "Related stories",
        "<form",
    ]
    for marker in markers:
        assert marker in html, (path, marker)
    assert "advertisement" in html.lower(), path
    assert re.search(r'<nav\b|role="navigation"|id="menu"', html), path
    assert "©" in html or "&copy;" in html, path
    article = re.search(r"<article\b.*?</article>", html, re.S)
    assert article, path
    paragraphs = re.findall(r"<p>(.*?)</p>", article.group(0), re.S)
    words = sum(len(p.split()) for p in paragraphs)
    assert 250 <= words <= 600, (path, words)
    for link in re.findall(r'href="([^"#]+)"', article.group(0) + html.split("Related stories")[1]):
        if link.endswith(".html"):
            assert fetch(link).status == 200, (path, link)
