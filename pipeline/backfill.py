"""The backfill pipeline, top to bottom: read archives (WARC, saved feeds, URL lists,
text folders) -> fetch what only has a URL -> skip what is already indexed -> extract
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

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics

from pipeline.config import Settings
from pipeline.reconcile import check, format_sink, index_dead_letters, reconcile
from transforms.dead_letters import WriteDeadLetters
from transforms.enrich import TagEntities
from transforms.extract import ExtractArticles
from transforms.fetch import FetchPages
from transforms.normalize import NormalizeArticles
from transforms.sinks import WriteToElasticsearch
from transforms.sources import saved_feeds, text, url_lists
from transforms.sources.files import ReadFiles
from transforms.sources.resume import SkipIndexed
from transforms.sources.selection import FilterArticles, FilterBySource, KeepOnePerUrl
from transforms.sources.warc import ReadWarcPages, is_warc_path

KINDS = ("warc", "feeds", "urls", "text")
PARSERS = {
    "feeds": (saved_feeds.SUFFIXES, saved_feeds.parse_saved_feed),
    "urls": (url_lists.SUFFIXES, url_lists.parse_url_list),
    "text": (text.SUFFIXES, text.parse_text_file),
}


@dataclass(frozen=True)
class SourceSpec:
    """One backfill input: its kind, the folder it names (for document identity), a glob."""

    kind: str
    root: str
    pattern: str


def classify_source(argument: str) -> SourceSpec:
    """Return what ``argument`` names: ``KIND:PATH`` explicitly, else guessed from the path.

    A ``.warc``/``.warc.gz`` path or glob (any Beam filesystem) is WARC; a local file
    ``.xml/.rss/.atom`` a saved feed, ``.txt/.csv/.jsonl`` a URL list; a local folder
    is WARC, feeds or text by the files it holds.
    """
    kind, sep, rest = argument.partition(":")
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


# What each source kind's parser yields besides failures (WARC records are all pages).
YIELDS = {"feeds": ("items", "pages"), "urls": ("items",), "text": ("pages", "articles")}


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
            extracted = inputs | "ExtractArticles" >> ExtractArticles()
            inputs = extracted.articles
            failures.append(extracted.dead_letter)
        written = (
            inputs
            | "CountExtracted" >> beam.Map(count_as, "extracted")
            | "Filter" >> FilterArticles(options)
            | "NormalizeText" >> NormalizeArticles(settings.max_body_chars)
            | "TagEntities" >> TagEntities(settings.enrich)
            | "WriteToElasticsearch"
            >> WriteToElasticsearch(settings.elasticsearch, versioned=True, emit_indexed=False)
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
    for kind, (suffixes, parser) in PARSERS.items():
        roots = [(s.root, s.pattern) for s in sources if s.kind == kind]
        if not roots:
            continue
        read = pipeline | f"Read {kind}" >> ReadFiles(
            roots, suffixes, parser, options.max_file_bytes
        )
        failures.append(read.dead_letter)
        if "items" in YIELDS[kind]:
            items.append(read.items)
        if "pages" in YIELDS[kind]:
            failures += read.pages | f"Index {kind} pages" >> ExtractAndIndex(settings)
        if "articles" in YIELDS[kind]:
            failures += read.articles | f"Index {kind}" >> ExtractAndIndex(settings, False)
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


# --- running it: input count, live progress, final summary ------------------------------


def count_inputs(sources: list[SourceSpec]):
    """Yield the number of inputs of each matched file (WARC responses, entries, URLs, files)."""
    from transforms.sources.counting import count_file_inputs, count_warc_responses, matched_paths

    for spec in sources:
        if spec.kind == "warc":
            for path in matched_paths(spec.pattern):
                yield count_warc_responses(path)
        else:
            for path in matched_paths(spec.pattern, PARSERS[spec.kind][0]):
                yield count_file_inputs(spec.kind, path)


def job_counters(result, committed: bool = False) -> dict[tuple[str, str], int]:
    """Return the job's user counters by (namespace, name), read while it runs.

    Portable runners (Prism, Flink) are asked through the job service, which
    reports counters mid-run; others through ``result.metrics()``.
    """
    from collections import Counter

    totals: Counter = Counter()
    service = getattr(result, "_job_service", None)
    if service is not None:
        from apache_beam.metrics import monitoring_infos
        from apache_beam.portability.api import beam_job_api_pb2

        request = beam_job_api_pb2.GetJobMetricsRequest(job_id=result._job_id)
        metrics = service.GetJobMetrics(request).metrics
        for info in metrics.committed if committed else metrics.attempted:
            if info.urn == monitoring_infos.USER_COUNTER_URN:
                key = (info.labels["NAMESPACE"], info.labels["NAME"])
                totals[key] += monitoring_infos.extract_counter_value(info)
        return dict(totals)
    for counter in result.metrics().query()["counters"]:
        value = counter.committed if committed else counter.attempted
        totals[(counter.key.metric.namespace, counter.key.metric.name)] += value or 0
    return dict(totals)


def summarize(counters: dict[tuple[str, str], int]) -> dict:
    """Return the run's summary: read, extracted, indexed, duplicates, skipped and failed
    by reason, ``done`` (inputs that reached one of those ends), and the sink's
    reconciliation: documents that entered it against those Elasticsearch acknowledged,
    found superseded and those written as dead letters (``gap`` is what is left)."""

    def by_reason(namespace: str) -> dict[str, int]:
        return dict(sorted((n, v) for (ns, n), v in counters.items() if ns == namespace and v))

    def count(name: str, namespace: str = "wirestream") -> int:
        return counters.get((namespace, name), 0)

    superseded = count("index_superseded")
    summary: dict[str, Any] = {name: count(name) for name in ("read", "extracted", "indexed")}
    summary["duplicates"] = count("duplicates") + superseded
    summary["skipped"] = by_reason("wirestream.skipped")
    summary["failed"] = by_reason("wirestream.failed")
    summary["done"] = (
        summary["indexed"]
        + summary["duplicates"]
        + sum(summary["skipped"].values())
        + sum(summary["failed"].values())
    )
    summary["sink"] = reconcile(
        count("to_index"),
        summary["indexed"],
        superseded,
        index_dead_letters(summary["failed"]),
        count("sink_waited_ms"),
    )
    return summary


def format_summary(summary: dict, seconds: float) -> str:
    """Return the summary as the lines printed at the end of a backfill."""
    rate = summary["indexed"] / seconds if seconds > 0 else 0.0
    lines = [
        f"backfill finished in {seconds:.1f}s ({rate:.1f} documents/s indexed)",
        f"  read {summary['read']}, extracted {summary['extracted']}, "
        f"indexed {summary['indexed']}, skipped as duplicate {summary['duplicates']}",
    ]
    for label, key in (("skipped", "skipped"), ("failed", "failed")):
        reasons = summary[key]
        if reasons:
            detail = ", ".join(f"{reason} {count}" for reason, count in reasons.items())
            lines.append(f"  {label} {sum(reasons.values())}: {detail}")
    lines.append("  " + format_sink(summary["sink"]))
    return "\n".join(lines)


class ProgressBar:
    """A progress bar over the job's inputs: the total is counted beside the job, the
    done count is read from the job's counters (so it shows what really finished)."""

    def __init__(self, sources: list[SourceSpec], result, enabled: bool) -> None:
        import threading

        from tqdm import tqdm

        self.result = result
        self.bar = tqdm(desc="backfill (counting inputs)", unit="doc", disable=not enabled)
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.threads = [
            threading.Thread(target=self._count, args=(sources,), daemon=True),
            threading.Thread(target=self._poll, daemon=True),
        ]
        if enabled:
            for thread in self.threads:
                thread.start()

    def _count(self, sources: list[SourceSpec]) -> None:
        total = 0
        for count in count_inputs(sources):
            total += count
            with self.lock:
                self.bar.total = total
                self.bar.refresh()
            if self.stopped.is_set():
                return
        with self.lock:
            self.bar.set_description("backfill")

    def _poll(self) -> None:
        while not self.stopped.wait(1.0):
            try:
                done = summarize(job_counters(self.result))["done"]
            except Exception:  # the job service may not answer yet, or any more
                continue
            with self.lock:
                self.bar.update(max(done - self.bar.n, 0))

    def close(self, done: int | None = None) -> None:
        self.stopped.set()
        with self.lock:
            if done is not None:
                self.bar.update(max(done - self.bar.n, 0))
            self.bar.close()


class ReportingResult:
    """A job result whose ``wait_until_finish`` also ends the progress bar and prints
    (and optionally writes as JSON) the run's summary, reconciliation included."""

    reconciled = True  # the launcher need not check the sink again

    def __init__(self, result, progress: ProgressBar, summary_path: str | None) -> None:
        import time

        self.result = result
        self.progress = progress
        self.summary_path = summary_path
        self.started = time.monotonic()

    def wait_until_finish(self, duration=None):
        import json
        import time

        try:
            state = self.result.wait_until_finish(duration)
        except BaseException:
            self.progress.close()
            raise
        seconds = time.monotonic() - self.started
        counters = job_counters(self.result, committed=True) or job_counters(self.result)
        summary = summarize(counters)
        self.progress.close(summary["done"])
        print(format_summary(summary, seconds), flush=True)
        if self.summary_path:
            Path(self.summary_path).write_text(json.dumps({**summary, "seconds": seconds}))
        check(summary["sink"], "re-run the backfill (it resumes)")
        return state

    def cancel(self):
        self.progress.close()
        return self.result.cancel()

    def __getattr__(self, name: str):
        return getattr(self.result, name)


def start_backfill(
    settings: Settings,
    sources: list[SourceSpec],
    beam_args: list[str],
    progress: bool = True,
    summary_path: str | None = None,
):
    """Return a function that builds and starts the batch job (run in the launcher's child)."""

    def run():
        from apache_beam.options.pipeline_options import PipelineOptions

        from pipeline.services.flink import on_cluster

        options = PipelineOptions(beam_args, save_main_session=False)
        pipeline = beam.Pipeline(options=options)
        build_backfill(pipeline, settings, sources)
        result = on_cluster(pipeline.run(), beam_args)
        return ReportingResult(result, ProgressBar(sources, result, progress), summary_path)

    return run


def run_backfill(
    settings: Settings,
    sources: list[SourceSpec],
    beam_args: list[str],
    progress: bool = True,
    summary_path: str | None = None,
) -> int:
    """Run the backfill to the end (Ctrl-C stops it cleanly); return an exit code."""
    from pipeline.launcher import run_supervised

    grace = settings.elasticsearch.max_wait_seconds + 5
    return run_supervised(
        start_backfill(settings, sources, beam_args, progress, summary_path), grace
    )
