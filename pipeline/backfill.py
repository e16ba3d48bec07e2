"""The backfill pipeline, top to bottom: read archives (WARC, saved feeds, URL lists,
text folders, sitemaps) -> fetch what only has a URL -> skip what is already indexed -> extract
-> filter -> normalise -> tag entities -> write to Elasticsearch; every stage's
failures go to one dead-letter sink, counted by reason.

No step between reading a record and writing its document groups or shuffles, so
documents reach Elasticsearch as they are enriched and a worker holds a bounded
number of pages at once, whatever the input's size. Documents are keyed by the
canonical URL's hash and written with the copy's crawl time as external version:
re-running a backfill, or killing and restarting it, leaves one document per
article (the latest crawl), and a restart skips inputs already indexed.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import apache_beam as beam
from apache_beam.metrics import Metrics

from pipeline.config import Settings
from pipeline.job import BackfillEnd, Job
from transforms.dead_letters import WriteDeadLetters
from transforms.enrich import TagEntities
from transforms.extract import ExtractArticles
from transforms.fetch import FetchPages
from transforms.index.sink import BACKFILL, WriteToIndex
from transforms.normalize import NormalizeArticles
from transforms.sources import text
from transforms.sources.files import ReadFiles
from transforms.sources.kinds import FILE_KINDS, KINDS
from transforms.sources.resume import SkipIndexed
from transforms.sources.selection import FilterArticles, FilterBySource, KeepOnePerUrl
from transforms.sources.sitemaps import ReadSitemaps
from transforms.sources.warc import ReadWarcPages, is_warc_path


@dataclass(frozen=True)
class SourceSpec:
    """One backfill input: its kind, the folder it names (for document identity), a glob."""

    kind: str
    root: str
    pattern: str


def classify_source(argument: str) -> SourceSpec:
    """Return what ``argument`` names: ``KIND:PATH`` explicitly, else guessed from the path.

    ``sitemap:`` takes a URL (a sitemap, an index or a robots.txt) or saved sitemap files.
    A ``.warc``/``.warc.gz`` path or glob (any Beam filesystem) is WARC; a local file
    ``.xml/.rss/.atom`` a saved feed, ``.txt/.csv/.jsonl`` a URL list; a local folder
    is WARC, feeds or text by the files it holds.
    """
    kind, sep, rest = argument.partition(":")
    if sep and kind == "sitemap" and rest.startswith(("http://", "https://")):
        return SourceSpec(kind, "", rest)
    if sep and kind in KINDS and not rest.startswith("//"):
        return _spec(kind, rest)
    if is_warc_path(argument.rstrip("*")) or "://" in argument:
        return SourceSpec("warc", "", argument)
    path = Path(argument)
    if path.is_file():
        lower = path.name.lower().removesuffix(".gz")
        if lower.endswith((".xml", ".rss", ".atom")):
            return SourceSpec("feeds", str(path.parent), str(path))
        if lower.endswith((".txt", ".csv", ".jsonl", ".ndjson")):
            return SourceSpec("urls", str(path.parent), str(path))
    if path.is_dir():
        names = [n.lower() for _, _, files in os.walk(path) for n in files]
        if any(is_warc_path(n) for n in names):
            return _spec("warc", argument)
        if any(n.removesuffix(".gz").endswith((".xml", ".rss", ".atom")) for n in names):
            return _spec("feeds", argument)
        if any(n.endswith(text.SUFFIXES) for n in names):
            return _spec("text", argument)
    raise ValueError(
        f"{argument}: not a WARC file, feed, URL list or folder of those; "
        f"name the kind explicitly ({', '.join(k + ':PATH' for k in KINDS)})"
    )


def _spec(kind: str, path: str) -> SourceSpec:
    if os.path.isdir(path):
        root = os.path.abspath(path)
        return SourceSpec(kind, root, f"{root}/**.warc*" if kind == "warc" else f"{root}/**")
    return SourceSpec(kind, os.path.dirname(path), path)


def count_as(element, name: str):
    """Return ``element`` after counting it under ``wirestream/<name>``."""
    Metrics.counter("wirestream", name).inc()
    return element


class ExtractAndIndex(beam.PTransform):
    """Page (or Article, ``from_pages=False``) -> written to Elasticsearch; returns the
    failures of every step.

    Each source gets a chain of its own instead of one chain after a Flatten: Prism
    does not fuse across a Flatten, so it would hold a stage's whole output (every page
    of a WARC block) in memory and start the next stage only when that stage's bundle
    ended, writing nothing until then.
    """

    def __init__(self, settings: Settings, from_pages: bool = True) -> None:
        super().__init__()
        self.settings = settings
        self.from_pages = from_pages

    def expand(self, inputs):
        settings, options = self.settings, self.settings.backfill
        failures = []
        if self.from_pages:
            inputs = inputs | "OfSource" >> FilterBySource(options.sources)
        inputs = inputs | "SkipIndexed" >> SkipIndexed(
            settings.elasticsearch, options.resume, options.resume_batch
        )
        if self.from_pages:
            extracted = inputs | "ExtractArticles" >> ExtractArticles(settings.extract.backend)
            inputs = extracted.articles
            failures.append(extracted.dead_letter)
        written = (
            inputs
            | "CountExtracted" >> beam.Map(count_as, "extracted")
            | "Filter" >> FilterArticles(options)
            | "NormalizeText" >> NormalizeArticles(settings.max_body_chars)
            | "TagEntities" >> TagEntities(settings.enrich)
            | "WriteToIndex" >> WriteToIndex(settings.elasticsearch, BACKFILL)
        )
        return [*failures, written.dead_letter]


def build_backfill(pipeline: beam.Pipeline, settings: Settings, sources: list[SourceSpec]) -> None:
    """Add the backfill of ``sources`` to ``pipeline``."""
    options = settings.backfill
    items, failures = [], []

    warc = [s.pattern for s in sources if s.kind == "warc"]
    if warc:
        read = pipeline | "ReadWarc" >> ReadWarcPages(warc, options.warc_block_bytes)
        failures.append(read.dead_letter)
        failures += read.pages | "Index warc" >> ExtractAndIndex(settings)
    sitemaps = [s.pattern for s in sources if s.kind == "sitemap"]
    if sitemaps:
        read = pipeline | "ReadSitemaps" >> ReadSitemaps(sitemaps, settings.fetch, options)
        failures.append(read["dead_letter"])
        items.append(read["items"])
    for kind in FILE_KINDS.values():
        roots = [(s.root, s.pattern) for s in sources if s.kind == kind.name]
        if not roots:
            continue
        read = pipeline | f"Read {kind.name}" >> ReadFiles(
            roots, kind.suffixes, kind.parse, options.max_file_bytes
        )
        failures.append(read.dead_letter)
        if "items" in kind.yields:
            items.append(read.items)
        if "pages" in kind.yields:
            failures += read.pages | f"Index {kind.name} pages" >> ExtractAndIndex(settings)
        if "articles" in kind.yields:
            failures += read.articles | f"Index {kind.name}" >> ExtractAndIndex(settings, False)
    if items:
        fetched = (
            items
            | "AllItems" >> beam.Flatten()
            | "ItemsOfSource" >> FilterBySource(options.sources)
            | "OncePerUrl" >> KeepOnePerUrl()
            | "FetchPages" >> FetchPages(settings.fetch)
        )
        failures.append(fetched.dead_letter)
        failures += fetched.pages | "Index fetched pages" >> ExtractAndIndex(settings)
    (
        failures
        | "AllFailures" >> beam.Flatten(pipeline=pipeline)
        | "WriteDeadLetters" >> WriteDeadLetters(settings.dead_letter_dir)
    )


# --- running it: input count, the job -----------------------------------------------------


def count_inputs(sources: list[SourceSpec]):
    """Yield the number of inputs of each matched file (WARC responses, entries, URLs, files)."""
    from transforms.sources.counting import count_warc_responses, matched_paths

    for spec in sources:
        if spec.kind == "sitemap":
            continue  # known only as the walk goes: its pages count as they are read
        if spec.kind == "warc":
            for path in matched_paths(spec.pattern):
                yield count_warc_responses(path)
        else:
            kind = FILE_KINDS[spec.kind]
            for path in matched_paths(spec.pattern, kind.suffixes):
                yield kind.count(path)


def backfill_job(
    settings: Settings,
    sources: list[SourceSpec],
    beam_args: list[str],
    progress: bool = True,
    summary_path: str | None = None,
) -> Job:
    """Return the backfill of ``sources`` as a job (``pipeline.job``): it runs to the end
    (Ctrl-C stops it cleanly) with the index refreshing slowly meanwhile, and then, with
    stories on, clusters the whole index."""
    from pipeline.services.runners import blocking
    from transforms.index.templates import bulk_loading

    end = BackfillEnd(
        settings, lambda: count_inputs(sources), blocking(beam_args), progress, summary_path
    )

    @contextlib.contextmanager
    def around() -> Iterator[None]:
        with bulk_loading(settings.elasticsearch):
            yield None

    def cluster_stories() -> int:
        from pipeline.story_pass import cluster_index

        passed = cluster_index(settings, progress)
        print(passed.line(), flush=True)
        return 1 if passed.failed else 0

    return Job(
        "backfill",
        settings,
        lambda pipeline: build_backfill(pipeline, settings, sources),
        end,
        grace=settings.elasticsearch.max_wait_seconds + 5,
        around=around,
        after=(cluster_stories,) if settings.stories.enabled else (),
    )
