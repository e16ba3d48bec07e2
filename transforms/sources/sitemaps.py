"""Sitemaps as a backfill source (``sitemap:URL`` or a saved ``.xml``/``.xml.gz`` file):
a site's archive without a WARC.

Indexes are followed level by level, each level a Beam stage behind a ``Reshuffle``,
so the sitemaps of a large index are read by all workers at once. A sitemap whose
index ``<lastmod>`` is before ``--since`` holds nothing newer and is not read; each
page is kept when its publication date (else ``<lastmod>``) is within
``--since/--until``, undated pages are left to the article filter. A sitemap that names
one of its own ancestors (a loop) is counted and not read again; deeper than
``backfill.sitemap_depth`` levels is counted and not read.
"""

from __future__ import annotations

import os

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from transforms.dates import as_utc
from transforms.dead_letters import Failure, dead_letter
from transforms.fetch import FetchError, make_session
from transforms.guard import guarded
from transforms.settings import BackfillSettings, FetchSettings
from transforms.sitemap_walk import entry_item, fetch_sitemap
from transforms.sitemap_xml import MAX_BYTES, Sitemap, SitemapTooLarge, parse_sitemap
from transforms.sources.records import count_skip

SUFFIXES = (".xml", ".xml.gz", ".txt", ".gz")


def is_remote(location: str) -> bool:
    return location.startswith(("http://", "https://"))


class ReadSitemapDoFn(beam.DoFn):
    """(sitemap location, its ancestors) -> FeedItems; the sitemaps it names go to the
    ``children`` output (when ``follow``), failures to ``dead_letter``."""

    def __init__(self, fetch: FetchSettings, backfill: BackfillSettings, follow: bool) -> None:
        self.fetch = fetch
        self.since, self.until = as_utc(backfill.since), as_utc(backfill.until)
        self.follow = follow
        self.read = Metrics.counter("wirestream", "read")
        self.sitemaps = Metrics.counter("wirestream", "sitemaps_read")

    def setup(self) -> None:
        self.session = make_session(self.fetch)

    def _load(self, location: str) -> Sitemap:
        if is_remote(location):
            got = fetch_sitemap(self.session, location, self.fetch)
            assert got is not None  # no validators were sent
            return got[0]
        with FileSystems.open(location, compression_type="uncompressed") as handle:
            data = handle.read(MAX_BYTES + 1)
        try:
            return parse_sitemap(data, location)
        except SitemapTooLarge as exc:
            raise FetchError("too_large", f"{location}: {exc}") from None

    @guarded("read", partial=True)
    def process(self, element: tuple[str, tuple[str, ...]]):
        location, ancestors = element
        try:
            sitemap = self._load(location)
        except FetchError as exc:
            self.read.inc()
            yield dead_letter(Failure("read", exc.reason, location, str(exc)))
            return
        self.sitemaps.inc()
        if sitemap.truncated:
            Metrics.counter("wirestream", "sitemap_urls_truncated").inc(sitemap.truncated)
        if sitemap.problem:
            self.read.inc()
            yield dead_letter(Failure("read", "bad_sitemap", location, sitemap.problem))
        for entry in sitemap.entries:
            self.read.inc()
            when = entry.when
            if self.since and when is not None and when < self.since:
                count_skip("before_since")
            elif self.until and when is not None and when >= self.until:
                count_skip("after_until")
            else:
                yield entry_item(entry, location)
        for child in sitemap.children:
            if self.since and child.lastmod is not None and child.lastmod < self.since:
                count_skip("sitemap_before_since")
            elif child.url == location or child.url in ancestors:
                Metrics.counter("wirestream", "sitemap_loops").inc()
            elif not self.follow:
                count_skip("sitemap_too_deep")
            else:
                yield beam.pvalue.TaggedOutput("children", (child.url, (*ancestors, location)))

    def teardown(self) -> None:
        self.session.close()


def sitemap_locations(pattern: str) -> list[str]:
    """Return ``pattern`` if it is a URL, else the files it matches (a folder: all in it)."""
    if is_remote(pattern):
        return [pattern]
    if os.path.isdir(pattern):
        pattern = os.path.join(os.path.abspath(pattern), "**")
    paths = [m.path for m in FileSystems.match([pattern])[0].metadata_list]
    return sorted(p for p in paths if p.lower().endswith(SUFFIXES))


class ReadSitemaps(beam.PTransform):
    """Sitemap URLs, files or folders -> {items, dead_letter}, indexes followed
    ``backfill.sitemap_depth`` levels down."""

    def __init__(self, patterns: list[str], fetch: FetchSettings, backfill: BackfillSettings):
        super().__init__()
        self.patterns = patterns
        self.fetch = fetch
        self.backfill = backfill

    def expand(self, pbegin):
        level = (
            pbegin
            | "Locations" >> beam.Create(self.patterns)
            | "Match" >> beam.FlatMap(sitemap_locations)
            | "NoAncestors" >> beam.Map(lambda location: (location, ()))
        )
        items, failures = [], []
        depth = self.backfill.sitemap_depth
        for number in range(depth + 1):
            read = (
                level
                | f"Spread {number}" >> beam.Reshuffle()
                | f"Read level {number}"
                >> beam.ParDo(
                    ReadSitemapDoFn(self.fetch, self.backfill, follow=number < depth)
                ).with_outputs("children", "dead_letter", main="items")
            )
            items.append(read.items)
            failures.append(read.dead_letter)
            level = read.children
        return {
            "items": items | "AllSitemapItems" >> beam.Flatten(),
            "dead_letter": failures | "AllSitemapFailures" >> beam.Flatten(),
        }
