"""Which articles a backfill keeps: the --since/--until/--source/--language filters, and
one article per canonical URL (the identity of a document in the index); which feed
items a stream takes (``stream.since``)."""

from __future__ import annotations

from datetime import datetime

import apache_beam as beam
from apache_beam.metrics import Metrics

from transforms.article import Article, FeedItem, Page
from transforms.dates import as_utc
from transforms.settings import BackfillSettings
from transforms.sources.records import count_skip
from transforms.urls import source_domain


def domain_matches(domain: str, wanted: list[str]) -> bool:
    """Return whether ``domain`` is one of ``wanted`` or a subdomain of one."""
    domain = domain.lower().removeprefix("www.")
    return any(domain == w or domain.endswith("." + w) for w in wanted)


def language_matches(language: str | None, wanted: list[str]) -> bool:
    """Return whether ``language`` (``en-gb``) is one of ``wanted`` (``en``)."""
    primary = (language or "").lower().replace("_", "-").split("-")[0]
    return bool(primary) and primary in wanted


def rejection(
    article: Article,
    since: datetime | None,
    until: datetime | None,
    sources: list[str],
    languages: list[str],
) -> str | None:
    """Return why the filters drop ``article`` (a metric name), or None to keep it."""
    published = article.published_at
    if (since or until) and published is None:
        return "undated"
    if since and published is not None and published < since:
        return "before_since"
    if until and published is not None and published >= until:
        return "after_until"
    if sources and not domain_matches(article.source, sources):
        return "other_source"
    if languages and not language_matches(article.language, languages):
        return "other_language"
    return None


class FilterArticles(beam.PTransform):
    """Article -> Article that passes the filters; the others are counted as skipped."""

    def __init__(self, settings: BackfillSettings) -> None:
        super().__init__()
        self.args = (
            as_utc(settings.since),
            as_utc(settings.until),
            settings.sources,
            settings.languages,
        )

    def expand(self, articles):
        args = self.args

        def keep(article: Article) -> bool:
            reason = rejection(article, *args)
            if reason:
                count_skip(reason)
            return reason is None

        return articles | beam.Filter(keep)


class SkipItemsBefore(beam.PTransform):
    """FeedItem -> those published on or after ``since`` (or undated); the others are
    counted as skipped (``before_since``) before anything is fetched."""

    def __init__(self, since: datetime | None) -> None:
        super().__init__()
        self.since = as_utc(since)

    def expand(self, items):
        since = self.since
        if since is None:
            return items

        def keep(item: FeedItem) -> bool:
            published = as_utc(item.published_at)
            if published is None or published >= since:
                return True
            count_skip("before_since")
            return False

        return items | beam.Filter(keep)


class FilterBySource(beam.PTransform):
    """FeedItem or Page -> the same, when its URL's domain is wanted (before any fetching)."""

    def __init__(self, sources: list[str]) -> None:
        super().__init__()
        self.sources = [s.lower() for s in sources]

    def expand(self, elements):
        wanted = self.sources
        if not wanted:
            return elements

        def keep(element: FeedItem | Page) -> bool:
            if domain_matches(source_domain(element.url), wanted):
                return True
            count_skip("other_source")
            return False

        return elements | beam.Filter(keep)


def preferred(articles: list[Article]) -> Article:
    """Return the copy to index among articles with one canonical URL: the latest
    fetched, then the longest body, then the smallest URL (so re-runs pick the same)."""
    return max(sorted(articles, key=lambda a: a.url), key=lambda a: (a.fetched_at, len(a.body)))


def _keep_one(keyed: tuple[str, list]):
    _, group = keyed
    group = list(group)
    if len(group) > 1:
        Metrics.counter("wirestream", "duplicates").inc(len(group) - 1)
    if isinstance(group[0], Article):
        yield preferred(group)
    else:
        yield min(group, key=lambda item: (item.feed_url, item.title))


class KeepOnePerArticle(beam.PTransform):
    """Article -> one Article per canonical URL; the others are counted as duplicates."""

    def expand(self, articles):
        return (
            articles
            | "ById" >> beam.Map(lambda a: (a.doc_id, a))
            | "Group" >> beam.GroupByKey()
            | "KeepOne" >> beam.FlatMap(_keep_one)
        )


class KeepOnePerUrl(beam.PTransform):
    """FeedItem -> one FeedItem per URL, so a URL listed twice is fetched once."""

    def expand(self, items):
        return (
            items
            | "ByUrl" >> beam.Map(lambda item: (item.url, item))
            | "Group" >> beam.GroupByKey()
            | "KeepOne" >> beam.FlatMap(_keep_one)
        )
