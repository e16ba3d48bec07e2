"""What a run shows while it runs and when it ends: progress bars, the job's counters
(one reader, ``job_counters``), the backfill's summary and the index's contents.

Assembly lives in ``stream.py`` and ``backfill.py``, starting and supervising a job in
``launcher.py``, parsing and dispatching in ``cli.py``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from pipeline.config import Settings
from transforms.index.client import NOT_FOUND_ERRORS
from transforms.index.reconcile import (
    INDEXED,
    SUPERSEDED_COPIES,
    TO_INDEX,
    WAITED_MS,
    format_sink,
    index_dead_letters,
    reconcile,
)

if TYPE_CHECKING:
    from transforms.index.client import SearchClient

log = logging.getLogger(__name__)


def job_counters(result, committed: bool = False) -> dict[tuple[str, str], int]:
    """Return the job's user counters by (namespace, name), read while it runs.

    Portable runners (Prism, Flink) are asked through the job service, which reports
    counters mid-run; others through ``result.metrics()``. The job service is reached
    through the result's private ``_job_service``/``_job_id`` on purpose: Beam's public
    ``PortableRunner`` result caches its first ``metrics()`` answer, so a progress bar
    reading it mid-run would stand still (apache_beam/runners/portability/
    portable_runner.py, ``PipelineResult.metrics``).
    """
    on_cluster = getattr(result, "user_counters", None)  # a job on a Flink cluster
    if on_cluster is not None:
        return on_cluster()
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


def summarize_counters(counters: dict[tuple[str, str], int]) -> dict:
    """Return the run's summary: read, extracted, indexed, duplicates, skipped and failed
    by reason, ``done`` (inputs that reached one of those ends), and the sink's
    reconciliation: documents that entered it against those Elasticsearch acknowledged,
    found superseded and those written as dead letters (``gap`` is what is left)."""

    def by_reason(namespace: str) -> dict[str, int]:
        return dict(sorted((n, v) for (ns, n), v in counters.items() if ns == namespace and v))

    def count(name: str, namespace: str = "wirestream") -> int:
        return counters.get((namespace, name), 0)

    superseded = count(SUPERSEDED_COPIES)
    summary: dict[str, Any] = {name: count(name) for name in ("read", "extracted", INDEXED)}
    summary["duplicates"] = count("duplicates") + superseded
    summary["skipped"] = by_reason("wirestream.skipped")
    summary["failed"] = by_reason("wirestream.failed")
    summary["languages"] = by_reason("wirestream.languages")
    summary["language_evidence"] = by_reason("wirestream.language")
    summary["entities_skipped"] = by_reason("wirestream.entities_skipped")
    summary["done"] = (
        summary["indexed"]
        + summary["duplicates"]
        + sum(summary["skipped"].values())
        + sum(summary["failed"].values())
    )
    summary["sink"] = reconcile(
        count(TO_INDEX),
        summary[INDEXED],
        superseded,
        index_dead_letters(summary["failed"]),
        count(WAITED_MS),
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
    lines += format_languages(summary)
    lines.append("  " + format_sink(summary["sink"]))
    return "\n".join(lines)


def format_languages(summary: dict) -> list[str]:
    """Return the summary's language lines: articles per detected language, how many
    declared another language (or none), and those no entity model could tag."""
    languages = summary.get("languages") or {}
    if not languages:
        return []
    ranked = sorted(languages.items(), key=lambda kv: (-kv[1], kv[0]))
    evidence = summary.get("language_evidence") or {}
    lines = [
        "  languages: "
        + ", ".join(f"{lang} {n}" for lang, n in ranked[:12])
        + (f", {len(ranked) - 12} more" if len(ranked) > 12 else ""),
        f"    decided by the text against another declared language: "
        f"{evidence.get('overridden', 0)}; nothing declared: {evidence.get('text', 0)}; "
        f"text inconclusive, declared kept: {evidence.get('declared', 0)}",
    ]
    skipped = summary.get("entities_skipped") or {}
    if skipped:
        detail = ", ".join(f"{reason} {n}" for reason, n in sorted(skipped.items()))
        lines.append(f"    no entities (no model of the language): {detail}")
    return lines


class BackfillProgress:
    """A progress bar over the job's inputs: the total is counted beside the job; the
    done count comes from ``done`` every second (the job's counters where the runner
    reports them mid-run, so it shows what really finished)."""

    def __init__(
        self,
        totals: Callable[[], Iterable[int]],
        done: Callable[[], int],
        enabled: bool,
        label: str = "backfill",
    ) -> None:
        from tqdm import tqdm

        self.done, self.label = done, label
        self.bar = tqdm(desc=f"{label} (counting inputs)", unit="doc", disable=not enabled)
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.threads = [
            threading.Thread(target=self._count, args=(totals,), daemon=True),
            threading.Thread(target=self._poll, daemon=True),
        ]
        if enabled:
            for thread in self.threads:
                thread.start()

    @classmethod
    def of_job(cls, totals: Callable[[], Iterable[int]], result, enabled: bool):
        """A bar whose done count is the job's: read from its counters mid-run."""
        return cls(totals, lambda: summarize_counters(job_counters(result))["done"], enabled)

    def _count(self, totals: Callable[[], Iterable[int]]) -> None:
        total = 0
        for count in totals():
            total += count
            with self.lock:
                self.bar.total = total
                self.bar.refresh()
            if self.stopped.is_set():
                return
        with self.lock:
            self.bar.set_description(self.label)

    def _poll(self) -> None:
        while not self.stopped.wait(1.0):
            try:
                done = self.done()
            except Exception:  # the job service or index may not answer yet, or any more
                continue
            with self.lock:
                self.bar.update(max(done - self.bar.n, 0))

    def close(self, done: int | None = None) -> None:
        self.stopped.set()
        with self.lock:
            if done is not None:
                self.bar.update(max(done - self.bar.n, 0))
            self.bar.close()
        if hasattr(self.done, "close"):
            self.done.close()


class IndexedSince:
    """Documents the index wrote since this was made (new ones and rewritten ones): the
    progress of a runner that reports its counters only at the end (the DirectRunner).
    Read from the indexing statistics, which move before a refresh makes the documents
    searchable (a backfill refreshes every 30 s); the summary at the end is exact."""

    def __init__(self, settings: Settings) -> None:
        from transforms.index.client import make_client

        self.alias = settings.elasticsearch.alias
        self.client = make_client(settings.elasticsearch, retries=0)
        self.start = self._written()

    def _written(self) -> int:
        try:
            stats = self.client.indices.stats(index=self.alias, metric="indexing")
        except NOT_FOUND_ERRORS:  # the alias appears with the first document
            return 0
        return int(stats["_all"]["primaries"].get("indexing", {}).get("index_total", 0))

    def __call__(self) -> int:
        return max(self._written() - self.start, 0)

    def close(self) -> None:
        self.client.close()


def read_counters(result) -> dict[tuple[str, str], int]:
    """Return the job's user counters at its end, committed where the runner has them;
    empty (and logged) for a runner without metrics, which must not fail the run."""
    try:
        return job_counters(result, committed=True) or job_counters(result)
    except Exception as exc:
        log.info("no metrics from the runner: %s", exc)
        return {}


def by_name(counters: dict[tuple[str, str], int]) -> dict[str, int]:
    """Return the ``wirestream`` counters by name (``failed.fetch:http_404`` for
    ``wirestream.failed`` / ``fetch:http_404``)."""
    totals: dict[str, int] = {}
    for (namespace, name), value in counters.items():
        if not namespace.startswith("wirestream"):
            continue
        key = name if namespace == "wirestream" else f"{namespace[11:]}.{name}"
        totals[key] = totals.get(key, 0) + value
    return totals


def wirestream_counters(result, committed: bool = False) -> dict[str, int]:
    """Return the job's ``wirestream`` counters by name, read while it runs; what the
    runner cannot give raises."""
    return by_name(job_counters(result, committed))


def print_counters(totals: dict[str, int]) -> None:
    """Print a job's ``wirestream`` counters (by name) on one line."""
    if totals:
        print(
            "pipeline counters: " + ", ".join(f"{k}={v}" for k, v in sorted(totals.items())),
            flush=True,
        )


class StreamProgress:
    """A progress bar for a streaming run: seconds elapsed (of the duration, if any) and
    documents in the index, read from Elasticsearch every few seconds. Shown only on a
    terminal."""

    def __init__(self, settings: Settings, duration: float | None, every: float = 3.0) -> None:
        from tqdm import tqdm

        self.settings, self.every = settings, every
        self.bar = tqdm(
            total=int(duration) if duration else None,
            desc="streaming",
            unit="s",
            bar_format="{desc}: {n_fmt}/{total_fmt}s |{bar}|" if duration else "{desc}: {n_fmt}s",
            disable=None,  # off when stdout is not a terminal (logs, CI)
        )
        self.started = self.last = time.monotonic()
        self.client: SearchClient | None = None

    def tick(self) -> None:
        now = time.monotonic()
        elapsed = int(now - self.started)
        target = min(elapsed, self.bar.total) if self.bar.total else elapsed
        self.bar.update(target - self.bar.n)
        if self.bar.disable or now - self.last < self.every:
            return
        self.last = now
        try:
            if self.client is None:
                from transforms.index.client import make_client

                self.client = make_client(self.settings.elasticsearch)
            count = self.client.count(index=self.settings.elasticsearch.alias)["count"]
            self.bar.set_description_str(f"streaming, {count} documents in the index")
        except NOT_FOUND_ERRORS:  # the alias appears with the first document
            self.bar.set_description_str("streaming, no documents yet")
        except Exception:  # the bar is informative only; the run reports errors itself
            self.bar.set_description_str("streaming, the index is not reachable")

    def __enter__(self) -> StreamProgress:
        return self

    def __exit__(self, *_exc) -> None:
        self.bar.close()
        if self.client is not None:
            self.client.close()


def print_summary(settings: Settings) -> None:
    """Print what landed in Elasticsearch: counts, latest titles, top entities."""
    from transforms.index.client import make_client
    from transforms.index.reads import index_summary

    client = make_client(settings.elasticsearch)
    summary = index_summary(client, settings.elasticsearch.alias)
    client.close()
    print(f"\n{summary['total']} documents in '{settings.elasticsearch.alias}'")
    for label, key in (("per publisher", "publishers"), ("per source", "sources")):
        rows = summary.get(key) or []
        if rows:
            print(f"  {label}: " + ", ".join(f"{name} {count}" for name, count in rows))
    print("  latest titles:")
    for hit in summary["titles"]:
        print(f"    [{(hit.get('published_at') or '')[:10]}] {hit.get('title')}")
    for key in ("people", "organizations", "places"):
        rows = summary.get(key) or []
        if rows:
            print(f"  top {key}: " + ", ".join(f"{name} ({count})" for name, count in rows))
