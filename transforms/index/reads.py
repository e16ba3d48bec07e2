"""What is read back from the index: resume lookups, the stories a stream restores,
the articles a stories pass scans, and the summary of what landed."""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from transforms.dates import parse_iso
from transforms.index.client import SearchClient, scan
from transforms.language import canonical_language
from transforms.story_clustering import StoryClusterer, StoryInput

# What clustering reads of an indexed article (the body is the bulk of it).
STORY_FIELDS = [
    "title",
    "title_normalized",
    "body_normalized",
    "source",
    "entities",
    "countries",
    "language",
    "published_at",
    "fetched_at",
    "story_time",
    "story_id",
    "duplicate_of",
    "copy_group",
]


IDS_PER_QUERY = 1000


def input_of_document(doc_id: str, source: dict[str, Any]) -> StoryInput:
    """Return the clustering input of an indexed article (``_source`` with STORY_FIELDS)."""
    published, fetched = parse_iso(source.get("published_at")), parse_iso(source.get("fetched_at"))
    when = parse_iso(source.get("story_time"))
    if when is None:  # indexed before story_time existed: as Article.story_time
        when = min(published, fetched) if published and fetched else published or fetched
    return StoryInput(
        doc_id=doc_id,
        time=when,
        title_normalized=source.get("title_normalized") or "",
        body_normalized=source.get("body_normalized") or "",
        source=source.get("source") or "",
        title=source.get("title") or "",
        entities=source.get("entities") or {},
        countries=tuple(source.get("countries") or ()),
        language=canonical_language(source.get("language")),  # older documents: "en-gb"
    )


def restore_open_stories(
    clusterer: StoryClusterer, client, alias: str, now: datetime
) -> tuple[int, int]:
    """Read back into ``clusterer`` the stories whose last article is within its window of
    ``now``, with all their articles, in time order (as they were first seen, so their
    vectors come out as before); return (stories, articles) restored."""
    since = (now - clusterer.window).isoformat()
    recent = scan(
        client,
        alias,
        {"query": {"range": {"story_time": {"gte": since}}}, "_source": ["story_id"]},
        ignore_unavailable=True,
    )
    story_ids = sorted({hit["_source"].get("story_id") for hit in recent} - {None})
    chunks = [
        scan_in_time_order(client, alias, {"terms": {"story_id": story_ids[i : i + IDS_PER_QUERY]}})
        for i in range(0, len(story_ids), IDS_PER_QUERY)
    ]
    articles = 0
    for hit in heapq.merge(*chunks, key=_time_order):
        source = hit["_source"]
        clusterer.restore(
            input_of_document(hit["_id"], source), source["story_id"], source.get("copy_group")
        )
        articles += 1
    return len(story_ids), articles


def _time_order(hit: dict[str, Any]) -> tuple:
    return tuple(hit["sort"])


def scan_in_time_order(client, alias: str, query: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Yield the articles of ``alias`` matching ``query`` by (story_time, fetched_at,
    canonical URL): a total order, so a re-run sees them, and names their stories, exactly
    as before. A copy often carries its original's date: the one fetched first leads."""
    yield from scan(
        client,
        alias,
        {
            "query": query,
            "_source": [*STORY_FIELDS, "canonical_url"],
            "sort": [
                {"story_time": {"order": "asc", "missing": "_first"}},
                {"fetched_at": {"order": "asc", "missing": "_first"}},
                {"canonical_url": {"order": "asc"}},
            ],
        },
        preserve_order=True,
        size=500,
        ignore_unavailable=True,
    )


def indexed_keys(client, alias: str, urls: list[str]) -> set[tuple[str, str]]:
    """Return the (url, page_digest) pairs of the documents under ``alias`` with ``urls``."""
    response = client.options(ignore_status=404).search(
        index=alias,
        query={"terms": {"url": urls}},
        source=["url", "page_digest"],
        size=min(10 * len(urls), 10_000),
        ignore_unavailable=True,
        allow_no_indices=True,
    )
    hits = response.get("hits", {}).get("hits", [])
    return {(h["_source"].get("url"), h["_source"].get("page_digest")) for h in hits}


def indexed_urls(client, alias: str, urls: list[str]) -> set[str]:
    """Return which of ``urls`` are indexed under ``alias``, as ``url`` or ``canonical_url``."""
    response = client.options(ignore_status=404).search(
        index=alias,
        query={
            "bool": {
                "should": [{"terms": {"url": urls}}, {"terms": {"canonical_url": urls}}],
                "minimum_should_match": 1,
            }
        },
        source=["url", "canonical_url"],
        size=min(2 * len(urls), 10_000),
        ignore_unavailable=True,
        allow_no_indices=True,
    )
    found = {
        value
        for hit in response.get("hits", {}).get("hits", [])
        for value in (hit["_source"].get("url"), hit["_source"].get("canonical_url"))
    }
    return found & set(urls)


def index_summary(client: SearchClient, alias: str, top: int = 5) -> dict[str, Any]:
    """Return what landed: counts per source and publisher, latest titles, top entities."""
    client.indices.refresh(index=alias, ignore_unavailable=True)
    aggs = {
        "sources": {"terms": {"field": "source", "size": 50}},
        "publishers": {"terms": {"field": "publisher", "size": 50}},
    }
    for field in ("people", "organizations", "places"):
        aggs[field] = {"terms": {"field": f"entities.{field}", "size": top}}
    result = client.search(
        index=alias,
        size=top,
        sort=[{"published_at": {"order": "desc", "missing": "_last"}}],
        source_includes=["title", "source", "published_at"],
        aggs=aggs,
        track_total_hits=True,
        ignore_unavailable=True,
    )
    buckets = {
        name: [(b["key"], b["doc_count"]) for b in agg["buckets"]]
        for name, agg in result.get("aggregations", {}).items()
    }
    return {
        "total": result["hits"]["total"]["value"],
        "titles": [h["_source"] for h in result["hits"]["hits"]],
        **buckets,
    }
