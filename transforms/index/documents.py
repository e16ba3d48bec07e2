"""What the index stores: an article's document and bulk action, a story's action.

Documents are keyed by a stable hash of the canonical URL (``_id``) and written with
``index`` (overwrite), so re-running a backfill or restarting a stream never
duplicates. A backfill writes with external versions (the copy's crawl time,
``external_gte``): the latest crawl of an article wins whatever order workers write in.
"""

from __future__ import annotations

import time
from typing import Any

from transforms.analysis import search_fields
from transforms.article import Article
from transforms.dates import iso
from transforms.index.names import index_for


def to_document(article: Article) -> dict[str, Any]:
    """Return the Elasticsearch document for ``article``."""
    return {
        "url": article.url,
        "canonical_url": article.canonical_url,
        "source": article.source,
        "publisher": article.publisher or None,
        "feed_url": article.feed_url,
        "feed_urls": article.feed_urls or ([article.feed_url] if article.feed_url else []),
        "title": article.title,
        "title_normalized": article.title_normalized,
        "body": article.body,
        "body_normalized": article.body_normalized,
        "authors": article.authors,
        "published_at": iso(article.published_at),
        "fetched_at": iso(article.fetched_at),
        "language": article.language,
        "language_declared": article.language_declared,
        "language_confidence": article.language_confidence,
        "extractor": article.extractor or None,
        "tags": article.tags,
        "top_image": article.top_image,
        "word_count": article.word_count,
        "body_truncated": article.body_truncated,
        "content_hash": article.content_hash,
        "page_digest": article.page_digest or None,
        "entities": article.entities,
        "entity_counts": article.entity_counts,
        "entities_model": article.entities_model,
        "entities_skipped": article.entities_skipped,
        "locations": article.locations,
        "countries": article.countries,
        "story_time": iso(article.story_time),
        "story_id": article.story_id,
        "duplicate_of": article.duplicate_of,
        "copy_group": article.copy_group,
        **search_fields(article.title, article.body, article.language),
    }


def crawl_version(article: Article) -> int:
    """Return the external version of ``article``: its fetch time in epoch milliseconds."""
    return max(int(article.fetched_at.timestamp() * 1000), 1)


def to_action(article: Article, prefix: str, versioned: bool = False) -> dict[str, Any]:
    """Return the bulk ``index`` action for ``article`` (external version if ``versioned``)."""
    action: dict[str, Any] = {
        "_op_type": "index",
        "_index": index_for(article, prefix),
        "_id": article.doc_id,
        "_source": to_document(article),
    }
    if versioned:
        action |= {"version": crawl_version(article), "version_type": "external_gte"}
    return action


def story_action(document: dict[str, Any], index: str, version: int) -> dict[str, Any]:
    """Return the bulk action writing a story's document; the later write wins."""
    return {
        "_op_type": "index",
        "_index": index,
        "_id": document["story_id"],
        "_source": document,
        "version": version,
        "version_type": "external_gte",
    }


def write_version() -> int:
    """Return the external version of a story write: now, in epoch milliseconds."""
    return int(time.time() * 1000)
