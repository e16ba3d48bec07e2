"""Resume, not redo: skip inputs already indexed.

A backfill's page (or a text file's article) whose URL is in the index with the same
``page_digest`` was extracted, enriched and written by an earlier run; a restart
skips it before extraction and NER, the expensive stages. A stream's feed item whose
URL is indexed (as the fetched or the canonical URL) is skipped before it is fetched,
so a restarted stream fetches what is new, not everything its feeds still list.
Lookups go in bulk, one search per ``batch`` inputs, buffered per bundle. When
Elasticsearch cannot answer, the inputs go on (writes are idempotent) and the lookup
failure is counted.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.utils.windowed_value import WindowedValue

from transforms.article import Article, FeedItem, Page
from transforms.batching import BatchingDoFn
from transforms.index.client import make_client
from transforms.index.reads import indexed_keys, indexed_urls
from transforms.settings import ElasticsearchSettings
from transforms.sources.records import count_skip

log = logging.getLogger(__name__)


def resume_key(element: Page | Article) -> tuple[str, str]:
    """Return the (url, page digest) by which an input is found in the index."""
    if isinstance(element, Page):
        return element.url, element.digest
    return element.url, element.page_digest


class SkipIndexedDoFn(BatchingDoFn):
    """Page or Article -> the same, unless already indexed with the same content."""

    def __init__(self, settings: ElasticsearchSettings, batch: int) -> None:
        self.settings = settings
        self.max_batch = batch
        self.failed = Metrics.counter("wirestream", "resume_lookup_failed")

    def setup(self) -> None:
        self.client = make_client(self.settings)

    def handle_batch(self, batch: list[WindowedValue]) -> Iterator[WindowedValue]:
        keys = [self.key(wv.value) for wv in batch]
        try:
            done = self.lookup(keys)
        except Exception as exc:  # Elasticsearch down: do the work again rather than lose it
            self.failed.inc()
            log.warning("resume lookup failed (%s); processing %d inputs", exc, len(batch))
            done = set()
        for wv, key in zip(batch, keys, strict=True):
            if key in done:
                count_skip("already_indexed")
            else:
                yield wv

    def key(self, element: Page | Article) -> tuple[str, str]:
        return resume_key(element)

    def lookup(self, keys: list) -> set:
        return indexed_keys(self.client, self.settings.alias, sorted({u for u, _ in keys}))

    def teardown(self) -> None:
        self.client.close()


class SkipIndexedItemsDoFn(SkipIndexedDoFn):
    """FeedItem -> the same, unless its URL is indexed (a stream's resume)."""

    max_wait = 2.0  # a stream's items do not wait long for a batch to fill

    def key(self, element: FeedItem) -> str:  # type: ignore[override]
        return element.url

    def lookup(self, keys: list) -> set:
        return indexed_urls(self.client, self.settings.alias, sorted(set(keys)))


class SkipIndexed(beam.PTransform):
    """Page or Article -> those not yet indexed with the same content (no-op if disabled)."""

    def __init__(self, settings: ElasticsearchSettings, enabled: bool, batch: int = 50) -> None:
        super().__init__()
        self.settings = settings
        self.enabled = enabled
        self.batch = batch

    def expand(self, elements):
        if not self.enabled:
            return elements
        return elements | beam.ParDo(SkipIndexedDoFn(self.settings, self.batch))


class SkipIndexedItems(SkipIndexed):
    """FeedItem -> those whose article is not indexed yet (no-op if disabled)."""

    def expand(self, items):
        if not self.enabled:
            return items
        return items | beam.ParDo(SkipIndexedItemsDoFn(self.settings, self.batch))
