"""The names of the indices wirestream writes: one rule, one place.

Articles go to ``<index_prefix>-<yyyy.mm>`` of their publish date (``-undated`` without
one) under the alias; the ingestion-health and source-health documents to
``<index_prefix>-stats`` (or ``stats.index``); stories to ``<index_prefix>-stories``.
"""

from __future__ import annotations

from datetime import timezone

from transforms.article import Article
from transforms.settings import ElasticsearchSettings, StatsSettings


def index_for(article: Article, prefix: str) -> str:
    """Return the monthly index name for ``article``'s publish date."""
    if article.published_at is None:
        return f"{prefix}-undated"
    return f"{prefix}-{article.published_at.astimezone(timezone.utc):%Y.%m}"


def template_name(settings: ElasticsearchSettings) -> str:
    return f"wirestream-{settings.index_prefix}"


def stats_index_name(es: ElasticsearchSettings, stats: StatsSettings) -> str:
    """Return the ingestion-health index: ``stats.index``, else ``<index_prefix>-stats``."""
    return stats.index or f"{es.index_prefix}-stats"


def stories_index_name(es: ElasticsearchSettings) -> str:
    """Return the stories index: ``<index_prefix>-stories``."""
    return f"{es.index_prefix}-stories"
