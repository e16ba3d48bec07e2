"""Real news about real events for the stories tests: ECB+ documents (``../shared/bench/
stories-dev``), as rows for ``wirestream stories``, as pages to serve or archive."""

from __future__ import annotations

import html
import json
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path

from pipeline.services.sample_site import FixtureServer
from tests.support.cli import wirestream

START = datetime(2026, 3, 2, 8, tzinfo=timezone.utc)


def ecbplus(shared: Path) -> list[dict]:
    """Return the ECB+ documents in file order."""
    path = shared / "bench" / "stories-dev" / "ecbplus" / "docs.jsonl"
    return [json.loads(line) for line in path.open(encoding="utf-8")]


def event(shared: Path, cluster_id: str, count: int) -> list[dict]:
    """Return the first ``count`` long documents (300+ tokens) reporting one event."""
    docs = [d for d in ecbplus(shared) if d["cluster_id"] == cluster_id and d["n_tokens"] >= 300]
    assert len(docs) >= count, f"{cluster_id} has {len(docs)} long documents"
    return docs[:count]


def row(doc: dict, hours: float, source: str) -> dict:
    """Return a ``wirestream stories`` row for ``doc`` published ``hours`` after START."""
    lines = doc["text"].split("\n")
    return {
        "id": doc["doc_id"],
        "title": lines[0],
        "body": "\n".join(lines[1:]),
        "published_at": (START + timedelta(hours=hours)).isoformat(),
        "source": source,
        "url": f"https://{source}/{doc['doc_id']}",
    }


def page(doc: dict, footer: str = "") -> bytes:
    """Return an article page for ``doc``: its first sentence as headline, the rest as
    paragraphs (plus ``footer``, as a republisher adds)."""
    lines = doc["text"].split("\n")
    title = html.escape(lines[0])
    paragraphs = "".join(f"<p>{html.escape(line)}</p>\n" for line in [*lines[1:], footer] if line)
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{title}</title>"
        f"</head><body><header><a href='/'>Home</a></header><article><h1>{title}</h1>\n"
        f"{paragraphs}</article><footer>About us</footer></body></html>"
    ).encode()


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


def stories_profile(tmp_path: Path, settings, outlets) -> Path:
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


def articles_by_url(es_client, alias: str) -> dict[str, dict]:
    es_client.indices.refresh(index=alias)
    hits = es_client.search(index=alias, size=1000, query={"match_all": {}})["hits"]["hits"]
    return {h["_source"]["url"]: h["_source"] | {"_id": h["_id"]} for h in hits}


def stories_by_id(es_client, prefix: str) -> dict[str, dict]:
    es_client.indices.refresh(index=f"{prefix}-stories")
    hits = es_client.search(index=f"{prefix}-stories", size=1000)["hits"]["hits"]
    return {h["_id"]: h["_source"] for h in hits}


def run_ok(*args: str, timeout: float = 600) -> str:
    proc = wirestream(*args)
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out
    return out


def assert_grouped(docs: dict[str, dict], urls: dict[str, str], in_order: bool = True) -> str:
    """Assert the reports form one story and the first report and its two copies one copy
    group; return the story id. ``in_order`` (the backfill, which sees everything): the
    first report names both. A stream names them after the first it sees: a copy fetched
    before its original leads."""
    group = [docs[urls[name]] for name in ("report0", "verbatim", "edited")]
    (root,) = [d for d in group if d["duplicate_of"] is None]
    assert {d["copy_group"] for d in group} == {root["_id"]}
    assert all(d["duplicate_of"] == root["_id"] for d in group if d is not root)
    story = root["story_id"]
    assert {d["story_id"] for d in group} == {story}
    assert {docs[urls[f"report{n}"]]["story_id"] for n in range(4)} == {story}
    assert story in {d["_id"] for d in docs.values() if d["story_id"] == story}
    if in_order:
        assert root is group[0] and story == root["_id"]
    others = [d for u, d in docs.items() if "/other-" in u]
    assert all(d["story_id"] != story and d["duplicate_of"] is None for d in others)
    assert len({d["story_id"] for d in others}) == 15  # other events stay in other stories
    return story


def publish_news(shared_dir: Path, tmp_path: Path):
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
    return outlets, urls, reports[4], start
