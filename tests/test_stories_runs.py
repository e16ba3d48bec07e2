"""Stories end to end on Prism into the real Elasticsearch: three outlets on 127.0.0.1
publish reports of one real event (ECB+), a verbatim and an edited copy of one of them,
and other news; the stream finds the copies and the story across outlets, fills the
stories index, and a restart continues the story under the same id. A WARC backfill of
the same pages gives the same grouping, and a re-run changes nothing."""

from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path

import pytest

from pipeline.services.sample_site import FixtureServer
from tests.support.cli import wirestream
from tests.support.stories import ecbplus, event, page

pytestmark = [pytest.mark.integration, pytest.mark.runner]

FOOTER = "This story was republished from the wire with permission. Share it."


class Outlet:
    """A publisher on its own port: article pages and an RSS feed listing them."""

    def __init__(self, root: Path, name: str) -> None:
        root.mkdir()
        self.name = name
        self.server = FixtureServer(root).start()
        self.items: list[tuple[str, str, datetime, bytes]] = []

    def publish(self, slug: str, html: bytes, when: datetime, title: str = "") -> str:
        url = self.server.add_route(f"/{slug}.html", html, {"Content-Type": "text/html"})
        self.items.append((url, title or slug, when, html))
        entries = "".join(
            f"<item><title>{t}</title><link>{u}</link><guid>{u}</guid>"
            f"<pubDate>{format_datetime(w)}</pubDate></item>"
            for u, t, w, _ in reversed(self.items)
        )
        self.server.add_route(
            "/feed.xml",
            f'<?xml version="1.0"?><rss version="2.0"><channel><title>{self.name}</title>'
            f"<link>{self.server.base_url}/</link>{entries}</channel></rss>",
            {"Content-Type": "application/rss+xml"},
        )
        return url


@pytest.fixture
def news(shared_dir, tmp_path):
    """Three outlets: four reports of one event, two copies of the first, other news."""
    reports = event(shared_dir, "29_ecbplus", 5)
    others = {}  # one report of each of 15 other kinds of event
    for doc in ecbplus(shared_dir):
        if doc["topic"] >= 30 and doc["n_tokens"] >= 200:
            others.setdefault(doc["topic"], doc)
    others = list(others.values())[:15]
    outlets = [Outlet(tmp_path / f"outlet{i}", f"Outlet {i}") for i in range(3)]
    start = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=12)
    urls = {}
    for n, doc in enumerate(others):
        outlets[n % 3].publish(f"other-{n}", page(doc), start - timedelta(hours=1, minutes=n))
    for n, doc in enumerate(reports[:4]):
        urls[f"report{n}"] = outlets[n % 3].publish(
            f"report-{n}", page(doc), start + timedelta(hours=n)
        )
    urls["verbatim"] = outlets[1].publish("wire-copy", page(reports[0]), start + timedelta(hours=5))
    urls["edited"] = outlets[2].publish(
        "wire-edited", page(reports[0], FOOTER), start + timedelta(hours=6)
    )
    yield outlets, urls, reports[4], start
    for outlet in outlets:
        outlet.server.stop()


def _profile(tmp_path: Path, settings, outlets) -> Path:
    es = settings.elasticsearch
    feeds = "\n".join(
        f"  - {{name: outlet{i}, url: '{o.server.url('feed.xml')}', interval: 5, language: en}}"
        for i, o in enumerate(outlets)
    )
    path = tmp_path / "profile.yaml"
    path.write_text(
        f"feeds:\n{feeds}\n"
        f"elasticsearch: {{url: '{es.url}', index_prefix: {es.index_prefix}, alias: {es.alias}, "
        "batch_size: 20, max_wait_seconds: 1}\n"
        "fetch: {allow_private_addresses: true, timeout: 5, retries: 0, host_min_delay: 0.1}\n"
        "stories: {max_wait_seconds: 2}\n"
        f"dead_letter_dir: '{tmp_path / 'dead-letter'}'\n"
    )
    return path


def _articles(es_client, alias: str) -> dict[str, dict]:
    es_client.indices.refresh(index=alias)
    hits = es_client.search(index=alias, size=1000, query={"match_all": {}})["hits"]["hits"]
    return {h["_source"]["url"]: h["_source"] | {"_id": h["_id"]} for h in hits}


def _stories(es_client, prefix: str) -> dict[str, dict]:
    es_client.indices.refresh(index=f"{prefix}-stories")
    hits = es_client.search(index=f"{prefix}-stories", size=1000)["hits"]["hits"]
    return {h["_id"]: h["_source"] for h in hits}


def _run(*args: str) -> str:
    proc = wirestream(*args)
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out
    return out


def _assert_grouped(docs: dict[str, dict], urls: dict[str, str]) -> str:
    """Assert the reports form one story named by the first and the copies point at it;
    return the story id."""
    first = docs[urls["report0"]]
    story = first["_id"]
    assert first["story_id"] == story and first["duplicate_of"] is None
    assert {docs[urls[f"report{n}"]]["story_id"] for n in range(4)} == {story}
    for copy in ("verbatim", "edited"):
        assert docs[urls[copy]]["duplicate_of"] == story, copy
        assert docs[urls[copy]]["copy_group"] == story
        assert docs[urls[copy]]["story_id"] == story
    others = [d for u, d in docs.items() if "/other-" in u]
    assert all(d["story_id"] != story and d["duplicate_of"] is None for d in others)
    assert len({d["story_id"] for d in others}) == 15  # other events stay in other stories
    return story


def test_stream_groups_copies_and_a_story_across_outlets_and_a_restart_continues_it(
    es_client, es_settings, news, tmp_path
):
    outlets, urls, late_report, start = news
    profile = _profile(tmp_path, es_settings, outlets)
    prefix = es_settings.elasticsearch.index_prefix

    _run("run", "--config", str(profile), "--duration", "45")

    docs = _articles(es_client, es_settings.elasticsearch.alias)
    assert len(docs) == 21
    story = _assert_grouped(docs, urls)
    stories = _stories(es_client, prefix)
    assert stories[story]["size"] == 6 and stories[story]["copies"] == 2
    assert stories[story]["source_count"] == 3
    assert stories[story]["title"] == docs[urls["report0"]]["title"]
    assert set(stories) == {d["story_id"] for d in docs.values()}  # one document per story

    # a restart: its state is gone, the story is read back; a new report joins it
    late = outlets[0].publish("report-late", page(late_report), start + timedelta(hours=7))
    out = _run("run", "--config", str(profile), "--duration", "40")

    again = _articles(es_client, es_settings.elasticsearch.alias)
    assert len(again) == 22
    assert again[late]["story_id"] == story, out
    assert {u: d["story_id"] for u, d in again.items() if u != late} == {
        u: d["story_id"] for u, d in docs.items()
    }
    grown = _stories(es_client, prefix)
    assert grown[story]["size"] == 7 and grown[story]["source_count"] == 3
    assert set(grown) == set(stories)


def test_backfill_groups_the_same_way_and_a_rerun_changes_nothing(
    es_client, es_settings, news, tmp_path
):
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    outlets, urls, _late, _start = news
    warc = tmp_path / "news.warc.gz"
    with warc.open("wb") as handle:
        writer = WARCWriter(handle, gzip=True)
        for outlet in outlets:
            for url, _title, when, body in outlet.items:
                http = StatusAndHeaders(
                    "200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1"
                )
                record = writer.create_warc_record(
                    url,
                    "response",
                    payload=io.BytesIO(body),
                    http_headers=http,
                    warc_headers_dict={"WARC-Date": when.strftime("%Y-%m-%dT%H:%M:%SZ")},
                )
                writer.write_record(record)
    profile = _profile(tmp_path, es_settings, outlets)
    args = ("backfill", str(warc), "--config", str(profile), "--no-progress")

    out = _run(*args)

    assert "stories: 21 articles in" in out, out
    docs = _articles(es_client, es_settings.elasticsearch.alias)
    assert len(docs) == 21
    story = _assert_grouped(docs, urls)
    stories = _stories(es_client, es_settings.elasticsearch.index_prefix)
    assert stories[story]["size"] == 6 and stories[story]["source_count"] == 3
    assert set(stories) == {d["story_id"] for d in docs.values()}

    rerun = _run(*args)

    assert "0 articles updated" in rerun, rerun
    assert {
        u: d["story_id"] for u, d in _articles(es_client, es_settings.elasticsearch.alias).items()
    } == {u: d["story_id"] for u, d in docs.items()}
    assert set(_stories(es_client, es_settings.elasticsearch.index_prefix)) == set(stories)
