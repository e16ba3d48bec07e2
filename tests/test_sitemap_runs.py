"""Sitemaps end to end on Prism into the real Elasticsearch, served from 127.0.0.1: a
stream polls a robots.txt -> index -> news sitemap with conditional GETs and takes a page
added mid-run; a backfill walks a sitemap index (and a saved sitemap file) with --since,
never reads the sitemaps older than it, and its re-run duplicates nothing."""

from __future__ import annotations

import gzip
import re
import threading
from datetime import datetime, timedelta, timezone

import pytest

from tests.support.stories import articles_by_url, run_ok

pytestmark = [pytest.mark.integration, pytest.mark.runner]

NS = (
    'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
    'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9"'
)
VALLEY = [
    "valley-ledger/news/2026-03-17-flood-defence-scheme.html",
    "valley-ledger/news/2026-03-13-rail-link-consultation.html",
    "valley-ledger/news/2026-03-09-market-hall-reopens.html",
]
NORTHWIND = [
    "northwind-times/2026/03/11/transit-budget-vote.html",
    "northwind-times/2026/03/12/university-research-grant.html",
    "northwind-times/2026/03/14/winter-storm-power-outages.html",
    "northwind-times/2026/03/16/startup-funding-round.html",
]
XML = {"Content-Type": "application/xml"}


def news_sitemap(site, pages: list[str], when: datetime, keywords: str = "") -> str:
    urls = "".join(
        f"<url><loc>{site.url(p)}</loc><news:news><news:publication><news:name>Valley Ledger"
        "</news:name><news:language>en</news:language></news:publication>"
        f"<news:publication_date>{when.isoformat()}</news:publication_date>"
        f"<news:title>Page {n}</news:title><news:keywords>{keywords}</news:keywords>"
        "</news:news></url>"
        for n, p in enumerate(pages)
    )
    return f'<?xml version="1.0" encoding="UTF-8"?><urlset {NS}>{urls}</urlset>'


def dated_sitemap(site, pages: list[str]) -> str:
    """A plain sitemap whose <lastmod> is each page's date (from its path)."""
    urls = "".join(
        f"<url><loc>{site.url(p)}</loc><lastmod>{date(p)}</lastmod></url>" for p in pages
    )
    return f'<?xml version="1.0"?><urlset {NS}>{urls}</urlset>'


def date(page: str) -> str:
    parts = page.replace("-", "/").split("/")
    year = next(i for i, p in enumerate(parts) if p == "2026")
    return "-".join(parts[year : year + 3])


def profile(tmp_path, es_settings, sitemaps: str = "") -> str:
    es = es_settings.elasticsearch
    path = tmp_path / "profile.yaml"
    path.write_text(
        sitemaps
        + f"elasticsearch: {{url: '{es.url}', index_prefix: {es.index_prefix}, alias: {es.alias}, "
        "batch_size: 20, max_wait_seconds: 1}\n"
        "fetch: {allow_private_addresses: true, timeout: 5, retries: 0, host_min_delay: 0}\n"
        "stream: {poll_tick_seconds: 1}\n"
        "enrich: {geocode: false}\n"
        f"dead_letter_dir: '{tmp_path / 'dead-letter'}'\n"
    )
    return str(path)


def test_stream_polls_a_news_sitemap_through_robots_and_an_index(
    es_client, es_settings, sample_site, tmp_path
):
    site = sample_site
    now = datetime.now(timezone.utc).replace(microsecond=0)
    site.add_route(
        "/robots.txt",
        f"User-agent: *\nSitemap: {site.url('sitemap.xml')}\n",
        {"Content-Type": "text/plain"},
    )
    site.add_route(
        "/sitemap.xml",
        f"<sitemapindex {NS}><sitemap><loc>{site.url('news.xml')}</loc>"
        f"<lastmod>{now.date().isoformat()}</lastmod></sitemap>"
        f"<sitemap><loc>{site.url('2019.xml')}</loc><lastmod>2019-05-01</lastmod></sitemap>"
        "</sitemapindex>",
        XML,
    )
    site.add_route("/news.xml", news_sitemap(site, VALLEY, now - timedelta(hours=2), "flood"), XML)
    later = news_sitemap(site, [*VALLEY, NORTHWIND[0]], now - timedelta(hours=1), "flood")
    stop = threading.Event()

    def publish_later() -> None:  # a new page, some polls after the first
        while not stop.wait(0.5):
            if any(r.path == "/news.xml" for r in site.requests):
                if not stop.wait(10):
                    site.add_route("/news.xml", later, XML)
                return

    update = threading.Thread(target=publish_later, daemon=True)
    sitemaps = (
        f"sitemaps:\n  - {{url: '{site.url('robots.txt')}', name: Valley Ledger, interval: 3,"
        " tags: [local]}\n"
    )
    update.start()
    try:
        config = profile(tmp_path, es_settings, sitemaps)
        out = run_ok("run", "--config", config, "--duration", "50")
    finally:
        stop.set()

    docs = articles_by_url(es_client, es_settings.elasticsearch.alias)
    assert set(docs) == {site.url(p) for p in [*VALLEY, NORTHWIND[0]]}, out[-3000:]
    flood = docs[site.url(VALLEY[0])]
    assert flood["publisher"] == "Valley Ledger" and {"local", "flood"} <= set(flood["tags"])
    assert flood["feed_url"] == site.url("robots.txt")
    news = [r.status for r in site.requests if r.path == "/news.xml"]
    assert news.count(200) == 2 and news.count(304) >= 5, news  # changed once, else unchanged
    assert not [r for r in site.requests if r.path == "/2019.xml"]  # older than the window
    index = [r.status for r in site.requests if r.path == "/sitemap.xml"]
    assert index[0] == 200 and set(index[1:]) == {304}, index


def test_backfill_walks_a_sitemap_index_by_date_and_a_rerun_duplicates_nothing(
    es_client, es_settings, sample_site, tmp_path
):
    site = sample_site
    site.add_route(
        "/sitemap-index.xml",
        f'<?xml version="1.0"?><sitemapindex {NS}>'
        f"<sitemap><loc>{site.url('sitemaps/2026-03.xml')}</loc><lastmod>2026-03-18</lastmod></sitemap>"
        f"<sitemap><loc>{site.url('sitemaps/2026-02.xml')}</loc><lastmod>2026-02-28</lastmod></sitemap>"
        f"<sitemap><loc>{site.url('sitemaps/2025.xml')}</loc><lastmod>2025-12-31</lastmod></sitemap>"
        f"<sitemap><loc>{site.url('sitemaps/more.xml')}</loc></sitemap>"
        "</sitemapindex>",
        XML,
    )
    # a March sitemap (the Northwind pages, one before --since) and an index that loops back
    site.add_route("/sitemaps/2026-03.xml", dated_sitemap(site, [*NORTHWIND, VALLEY[2]]), XML)
    site.add_route(
        "/sitemaps/more.xml",
        f"<sitemapindex {NS}><sitemap><loc>{site.url('sitemap-index.xml')}</loc></sitemap>"
        "</sitemapindex>",
        XML,
    )
    saved = tmp_path / "valley.xml.gz"  # a saved sitemap file, gzip'd
    saved.write_bytes(gzip.compress(dated_sitemap(site, VALLEY[:2]).encode()))
    args = (
        "backfill",
        f"sitemap:{site.url('sitemap-index.xml')}",
        f"sitemap:{saved}",
        "--since",
        "2026-03-10",
        "--config",
        profile(tmp_path, es_settings),
        "--no-progress",
    )

    out = run_ok(*args)

    docs = articles_by_url(es_client, es_settings.elasticsearch.alias)
    wanted = {site.url(p) for p in [*NORTHWIND, *VALLEY[:2]]}
    assert set(docs) == wanted, out[-3000:]
    asked = {r.path for r in site.requests}
    assert "/sitemaps/2026-02.xml" not in asked and "/sitemaps/2025.xml" not in asked
    assert site.url(VALLEY[2]).removeprefix(site.base_url) not in asked  # dated before --since
    assert [r.path for r in site.requests].count("/sitemap-index.xml") == 1  # the loop is cut

    again = run_ok(*args)

    assert set(articles_by_url(es_client, es_settings.elasticsearch.alias)) == wanted, again
    es_client.indices.refresh(index=es_settings.elasticsearch.alias)
    assert es_client.count(index=es_settings.elasticsearch.alias)["count"] == len(wanted)


def test_hostile_sitemaps_are_counted_and_the_good_one_still_flows(
    es_client, es_settings, sample_site, tmp_path
):
    from transforms.dead_letters import read_dead_letters

    site = sample_site
    now = datetime.now(timezone.utc).replace(microsecond=0)
    laughs = (
        '<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
        + "".join(
            f'<!ENTITY {n} "{("&" + p + ";") * 10}">'
            for p, n in zip("abcdefgh", "bcdefghi", strict=True)
        )
        + f"]><urlset {NS}><url><loc>{site.url('x')}&i;</loc></url></urlset>"
    )
    hostile = {
        "/bomb.xml.gz": (gzip.compress(b"<urlset>" + b" " * (60 << 20)), "application/gzip"),
        "/laughs.xml": (laughs.encode(), "application/xml"),
        "/loop.xml": (
            f"<sitemapindex {NS}><sitemap><loc>{site.url('loop.xml')}</loc></sitemap>"
            f"<sitemap><loc>{site.url('loop2.xml')}</loc></sitemap></sitemapindex>".encode(),
            "application/xml",
        ),
        "/loop2.xml": (
            f"<sitemapindex {NS}><sitemap><loc>{site.url('loop.xml')}</loc></sitemap>"
            "</sitemapindex>".encode(),
            "application/xml",
        ),
        "/page.xml": (b"<html><body>Not here</body></html>", "text/html"),
        "/cut.xml": (news_sitemap(site, [NORTHWIND[0]], now).encode()[:-60], "application/xml"),
    }
    for path, (body, kind) in hostile.items():
        site.add_route(path, body, {"Content-Type": kind})
    site.add_route("/news.xml", news_sitemap(site, VALLEY, now - timedelta(hours=1)), XML)
    roots = ["news.xml", "bomb.xml.gz", "laughs.xml", "loop.xml", "page.xml", "cut.xml", "gone.xml"]
    sitemaps = "sitemaps:\n" + "".join(
        f"  - {{url: '{site.url(r)}', interval: 60}}\n" for r in roots
    )

    out = run_ok("run", "--config", profile(tmp_path, es_settings, sitemaps), "--duration", "30")

    docs = articles_by_url(es_client, es_settings.elasticsearch.alias)
    assert set(docs) == {site.url(p) for p in VALLEY}, out[-3000:]
    letters = {
        (r["stage"], r["reason"], r["url"])
        for r in read_dead_letters([str(tmp_path / "dead-letter")])
    }
    assert ("poll", "too_large", site.url("bomb.xml.gz")) in letters, letters
    assert ("poll", "http_404", site.url("gone.xml")) in letters, letters
    assert "sitemap_loops=2" in out, out[-3000:]  # loop.xml names itself, loop2.xml names loop.xml
    degraded = re.search(r"feeds_degraded=(\d+)", out)
    assert degraded and int(degraded.group(1)) >= 3, out[-3000:]  # entities, HTML, cut file
    for reason in ("declares XML entities", "not a sitemap", "malformed XML"):
        assert reason in out, out[-3000:]
