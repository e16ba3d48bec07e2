"""A soak of the stream: many feeds on loopback hosts publishing real pages at a set
rate, ``wirestream run`` for a given time on a given runner, then a restart.

    python bench/stream_scale.py [--feeds 300] [--hosts 30] [--rate 1.0] [--minutes 60]
        [--restart-minutes 5] [--runner prism|flink] [--interval 60] [--delay 0.5]
        [--ttl-hours 0.25] [--es-url http://127.0.0.1:9200]

Each host (a fixture server on its own port) serves ``feeds / hosts`` RSS feeds; every
feed lists its latest 20 items, and starts with 20 dated a day earlier (what a real feed
lists when a stream starts). New articles appear at ``--rate`` per second overall
(Poisson), each a real page of ``../shared/bench`` under a new URL on a random feed. Both
runs start with ``--since`` the bench's start, so the day-old items are skipped unread.
Dedupe and stories keep state for ``--ttl-hours`` (short, so that an hour reaches the
state's plateau). Needs the local node (`wirestream es start`); `--runner flink` needs
the local cluster (`wirestream flink start`).

Prints: published, indexed, lost (published more than an interval plus two minutes
before the end and not indexed), duplicated; freshness (first searchable minus
published) p50/p95/max in steady state (published from 2 minutes after the start until
an interval plus 15 s before the first run's stop) and across the restart (the rest),
each split into published-to-requested and requested-to-searchable; each host's
minimum gap between request arrivals (feeds and pages); memory (PSS) per process kind
(a JVM by its role) every minute, printed every 5, and each JVM's live heap (in use
right after a full collection, ``jcmd``) every 5 minutes, each with a least-squares
slope over the first run once the TTLs are full (from the TTL plus 5 minutes, 10 at
least); CPU seconds per indexed article;
ingestion-health documents per article; and the restart's re-fetches: pages fetched
again that the first run had fetched, against what the feeds listed.
"""

from __future__ import annotations

import argparse
import gzip
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import deque
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = Path(os.environ.get("WIRESTREAM_SHARED", ROOT.parent / "shared"))

from bench.backfill import drop_indices  # noqa: E402
from bench.backfill_memory import kind, process_tree, pss_bytes  # noqa: E402


class Publisher:
    """Feeds on ``hosts`` fixture servers that gain real articles at ``rate`` per second."""

    def __init__(self, servers, feeds: int, pages: list[bytes], rate: float) -> None:
        self.servers, self.pages, self.rate = servers, pages, rate
        self.feeds = [(servers[n % len(servers)], f"/feed/{n}.xml") for n in range(feeds)]
        self.items = [deque(maxlen=20) for _ in self.feeds]
        self.published: dict[str, float] = {}  # URL -> when (epoch seconds)
        self.count = 0
        self.rng = random.Random(7)
        self.stop = threading.Event()
        old = datetime.now(timezone.utc) - timedelta(days=1)
        for feed in range(len(self.feeds)):
            for _ in range(20):
                self._add(feed, old, record=False)
            self._write_feed(feed)
        self.thread = threading.Thread(target=self._run, name="publisher", daemon=True)

    def _add(self, feed: int, when: datetime, record: bool = True) -> None:
        server, _ = self.feeds[feed]
        self.count += 1
        path = f"/a/{self.count}.html"
        page = self.pages[self.count % len(self.pages)]
        server.add_route(path, page.replace(b"</title>", f" {self.count}</title>".encode(), 1))
        url = server.url(path)
        self.items[feed].append((url, when))
        if record:
            self.published[url] = when.timestamp()

    def _write_feed(self, feed: int) -> None:
        server, path = self.feeds[feed]
        entries = "".join(
            f"<item><title>Article {url.rsplit('/', 1)[1]}</title><link>{url}</link>"
            f"<guid>{url}</guid><pubDate>{format_datetime(when)}</pubDate></item>"
            for url, when in reversed(self.items[feed])
        )
        server.add_route(
            path,
            f'<?xml version="1.0"?><rss version="2.0"><channel><title>{path}</title>'
            f"{entries}</channel></rss>",
            headers={"Content-Type": "application/rss+xml"},
        )

    def _run(self) -> None:
        while not self.stop.wait(self.rng.expovariate(self.rate)):
            feed = self.rng.randrange(len(self.feeds))
            self._add(feed, datetime.now(timezone.utc))
            self._write_feed(feed)

    def listed(self) -> int:
        """How many items the feeds list now."""
        return sum(len(items) for items in self.items)


class Watcher:
    """Notes when each article first becomes searchable (the index asked every 3 s)."""

    def __init__(self, client, alias: str) -> None:
        self.client, self.alias = client, alias
        self.seen: dict[str, float] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="watcher", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        since = "now-10m"
        while not self.stop.wait(3):
            try:
                hits = self.client.search(
                    index=self.alias,
                    size=2000,
                    source=["url"],
                    query={"range": {"fetched_at": {"gte": since}}},
                )["hits"]["hits"]
            except Exception:  # not created yet, or busy: ask again
                continue
            now = time.time()
            for hit in hits:
                self.seen.setdefault(hit["_source"]["url"], now)


class Usage:
    """PSS per process kind and CPU seconds of a process tree (plus fixed roots)."""

    def __init__(self, roots: list[int]) -> None:
        self.roots = roots
        self.cpu: dict[int, float] = {}  # pid -> last CPU seconds seen
        self.before = {pid: _cpu_seconds(pid) for pid in self.pids()}  # a cluster's past
        self.rows: list[tuple[float, dict[str, float]]] = []

    def pids(self) -> list[int]:
        return sorted({pid for root in self.roots for pid in process_tree(root)})

    def sample(self, at: float, live_heap: bool = False) -> dict[str, float]:
        """PSS MB per process kind (a JVM by its role); with ``live_heap``, also each
        JVM's heap in use right after a full collection (``<role> live heap``)."""
        by_kind: dict[str, float] = {}
        for pid in self.pids():
            name = kind(pid)
            if name == "java":
                name = java_role(pid)
                if live_heap:
                    heap = live_heap_mb(pid)
                    if heap is not None:
                        key = f"{name} live heap"
                        by_kind[key] = by_kind.get(key, 0.0) + heap
            by_kind[name] = by_kind.get(name, 0.0) + pss_bytes(pid) / 2**20
            self.cpu[pid] = max(self.cpu.get(pid, 0.0), _cpu_seconds(pid))
        by_kind["total"] = sum(v for k, v in by_kind.items() if not k.endswith("live heap"))
        self.rows.append((at, by_kind))
        return by_kind

    def cpu_seconds(self) -> float:
        return sum(cpu - self.before.get(pid, 0.0) for pid, cpu in self.cpu.items())


#: A JVM's role, by the main class on its command line.
JAVA_ROLES = {
    "TaskManagerRunner": "taskmanager",
    "StandaloneSessionClusterEntrypoint": "jobmanager",
    "JobServerDriver": "job-server",
    "elasticsearch": "elasticsearch",
}


def java_role(pid: int) -> str:
    """Return what the JVM ``pid`` is (taskmanager, jobmanager, job-server, ...)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            argv = handle.read().decode(errors="replace")
    except OSError:
        return "java"
    return next((role for key, role in JAVA_ROLES.items() if key in argv), "java")


def live_heap_mb(pid: int) -> float | None:
    """Return the heap the JVM ``pid`` uses right after a full collection (``jcmd``
    ``GC.run`` then ``GC.heap_info``): what it holds, not what it has not yet collected."""
    jcmd = Path(os.readlink(f"/proc/{pid}/exe")).with_name("jcmd")
    try:
        subprocess.run([jcmd, str(pid), "GC.run"], capture_output=True, timeout=60, check=True)
        info = subprocess.run(
            [jcmd, str(pid), "GC.heap_info"], capture_output=True, text=True, timeout=60
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    used = re.search(r"used (\d+)K", info)
    return int(used.group(1)) / 1024 if used else None


def _cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def slope_mb_per_hour(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MB) points, in MB per hour."""
    if len(points) < 3:
        return float("nan")
    mean_t = sum(t for t, _ in points) / len(points)
    mean_m = sum(m for _, m in points) / len(points)
    var = sum((t - mean_t) ** 2 for t, _ in points)
    return sum((t - mean_t) * (m - mean_m) for t, m in points) / var * 3600 if var else 0.0


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


def print_freshness(label: str, published: dict, seen: dict, fetched: dict) -> None:
    """Print freshness (searchable minus published) p50/p95/max of ``published``, and its
    two parts: published until the page was requested, and requested until searchable."""
    urls = [u for u in published if u in seen]
    parts = {
        "total": [seen[u] - published[u] for u in urls],
        "until fetched": [fetched[u] - published[u] for u in urls if u in fetched],
        "fetched to searchable": [seen[u] - fetched[u] for u in urls if u in fetched],
    }
    figures = "; ".join(
        f"{name} p50 {percentile(v, 0.5):.0f} / p95 {percentile(v, 0.95):.0f} / "
        f"max {max(v, default=float('nan')):.0f} s"
        for name, v in parts.items()
    )
    print(f"freshness {label} ({len(urls)} of {len(published)} searchable): {figures}")


def run(cmd: list[str], seconds: float, usage: Usage, started: float, log) -> int:
    """Run the stream for ``seconds`` (its own ``--duration``), sampling every minute."""
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    usage.roots.append(proc.pid)
    deadline = time.monotonic() + seconds + 600
    while proc.poll() is None and time.monotonic() < deadline:
        time.sleep(60 - (time.time() - started) % 60)
        if proc.poll() is not None:  # a run that is ending is not a sample of it
            break
        minute = round((time.time() - started) / 60)
        row = usage.sample(time.time() - started, live_heap=minute % 5 == 0)
        if minute % 5 == 0:
            kinds = ", ".join(f"{k} {v:.0f}" for k, v in sorted(row.items()))
            print(f"  {minute:3d} min  PSS MB: {kinds}", flush=True)
    if proc.poll() is None:
        proc.kill()
    usage.roots.remove(proc.pid)
    return proc.wait()


def main() -> int:
    from elasticsearch import Elasticsearch

    from pipeline.services import flink
    from pipeline.services.sample_site import FixtureServer
    from tests.support.real_pages import _CANONICAL, real_page_files

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=300)
    parser.add_argument("--hosts", type=int, default=30)
    parser.add_argument("--rate", type=float, default=1.0, help="new articles per second")
    parser.add_argument("--minutes", type=float, default=60, help="the first run")
    parser.add_argument("--restart-minutes", type=float, default=5, help="the second run")
    parser.add_argument("--runner", default="prism", choices=["prism", "flink"])
    parser.add_argument("--interval", type=float, default=60, help="each feed's poll interval")
    parser.add_argument("--delay", type=float, default=0.5, help="fetch.host_min_delay")
    parser.add_argument("--ttl-hours", type=float, default=0.25, help="dedupe and stories")
    parser.add_argument("--es-url", default="http://127.0.0.1:9200")
    args = parser.parse_args()
    pages = [_CANONICAL.sub(b"", gzip.decompress(p.read_bytes())) for p in real_page_files(SHARED)]
    if not pages:
        print(f"error: no pages under {SHARED}/bench", file=sys.stderr)
        return 2
    client = Elasticsearch(args.es_url, request_timeout=30)
    prefix = f"bench-soak-{uuid.uuid4().hex[:8]}"
    roots = []
    if args.runner == "flink":
        state = flink.status()
        if state is None:
            print("error: start the local cluster first (`wirestream flink start`)")
            return 2
        roots = list(state["pids"].values())
    logs = Path(tempfile.mkdtemp(prefix="stream-soak-"))  # kept: run logs, dead letters
    with tempfile.TemporaryDirectory() as tmp:
        servers = [FixtureServer(Path(tmp) / f"h{n}").start() for n in range(args.hosts)]
        publisher = Publisher(servers, args.feeds, pages, args.rate)
        # A little before the first new article: feed dates have whole seconds.
        since = (datetime.now(timezone.utc) - timedelta(seconds=5)).isoformat()
        feeds = "\n".join(
            f"  - {{name: f{n}, url: '{server.url(path)}', interval: {args.interval}, "
            "language: en}"
            for n, (server, path) in enumerate(publisher.feeds)
        )
        profile = Path(tmp) / "profile.yaml"
        profile.write_text(
            f"elasticsearch: {{url: '{args.es_url}', index_prefix: {prefix}, alias: {prefix}}}\n"
            "fetch: {allow_private_addresses: true, timeout: 10, retries: 0, "
            f"host_min_delay: {args.delay}, host_max_concurrent: 1, respect_robots: false}}\n"
            f"stream: {{dedupe_ttl_hours: {args.ttl_hours}}}\n"
            f"stories: {{window_hours: {args.ttl_hours}}}\n"
            f"dead_letter_dir: '{logs / 'dead-letter'}'\n"
            f"feeds:\n{feeds}\n"
        )
        cmd = [sys.executable, "-m", "pipeline.cli", "run", "--config", str(profile)]
        cmd += ["--runner", args.runner, "--since", since]
        usage = Usage(roots)
        watcher = Watcher(client, prefix)
        started = time.time()
        publisher.thread.start()
        print(
            f"{args.feeds} feeds on {args.hosts} hosts, {args.rate}/s, {args.runner}, "
            f"{args.minutes:g} + {args.restart_minutes:g} min; logs in {logs}",
            flush=True,
        )
        with open(logs / "run1.log", "w") as log:
            code1 = run(
                [*cmd, "--duration", str(args.minutes * 60)], args.minutes * 60, usage, started, log
            )
        first_end = time.time()
        cpu_first = usage.cpu_seconds()
        fetched_first = {r.path for s in servers for r in s.requests if r.path.startswith("/a/")}
        listed = publisher.listed()
        requests_first = [len(s.requests) for s in servers]
        with open(logs / "run2.log", "w") as log:
            code2 = run(
                [*cmd, "--duration", str(args.restart_minutes * 60)],
                args.restart_minutes * 60,
                usage,
                started,
                log,
            )
        publisher.stop.set()
        time.sleep(6)
        watcher.stop.set()
        end = time.time()
        second = [
            r
            for s, first in zip(servers, requests_first, strict=True)
            for r in s.requests[first:]
            if r.path.startswith("/a/")
        ]
        refetched = sum(1 for r in second if r.path in fetched_first)
        client.indices.refresh(index=prefix)
        urls = [
            hit["_source"]["url"]
            for hit in client.search(
                index=prefix, size=10000, source=["url"], query={"match_all": {}}
            )["hits"]["hits"]
        ]
        indexed = set(urls)
        cutoff = end - args.interval - 120
        published = publisher.published
        due = [u for u, t in published.items() if t < cutoff]
        lost = [u for u in due if u not in indexed]
        # Steady state: published from 2 min after the start until an interval plus 15 s
        # before the first run's stop (chosen by publish time, so a late one still counts);
        # the rest waited across the restart and is reported apart.
        steady_end = first_end - args.interval - 15
        steady = {u: t for u, t in published.items() if started + 120 < t < steady_end}
        across = {u: t for u, t in published.items() if t >= steady_end}
        fetched_at: dict[str, float] = {}
        for server in servers:  # the first request of each page
            for r in server.requests:
                fetched_at.setdefault(server.url(r.path), r.at)
        gaps = []
        short = []  # (gap, when after the start, the two paths): what came too close
        for server in servers:
            asked = sorted((r.at, r.path) for r in server.requests)
            for (a, first), (b, second) in zip(asked, asked[1:], strict=False):
                gaps.append(b - a)
                if b - a < args.delay:
                    short.append((b - a, a - started, first, second))
        print()
        print(
            f"published {len(published)}, indexed {len(indexed & published.keys())}, "
            f"lost {len(lost)} (of {len(due)} due), duplicated {len(urls) - len(indexed)}; "
            f"exit codes {code1}, {code2}"
        )
        for label, chosen in (("steady", steady), ("across the restart", across)):
            print_freshness(label, chosen, watcher.seen, fetched_at)
        polls = []  # each feed's time between two polls of one run
        for server in servers:
            by_feed: dict[str, list[float]] = {}
            for r in server.requests:
                if r.path.startswith("/feed/"):  # the restart's gap is not a poll's
                    by_feed.setdefault(f"{r.path} {r.at > first_end}", []).append(r.at)
            for times in by_feed.values():
                polls += [b - a for a, b in zip(times, times[1:], strict=False)]
        print(
            f"time between a feed's polls: p5 {percentile(polls, 0.05):.0f} / "
            f"p50 {percentile(polls, 0.5):.0f} / p95 {percentile(polls, 0.95):.0f} s "
            f"(interval {args.interval:g} s; {len(polls)} gaps)"
        )
        for url in lost[:5]:  # what became of them, for the log in the run's folder
            asked = fetched_at.get(url)
            print(
                f"  lost {url}: published at {published[url] - started:.0f} s, "
                + (f"page fetched at {asked - started:.0f} s" if asked else "page never fetched")
            )
        print(
            f"per-host gap between request arrivals: min {min(gaps):.3f} s "
            f"(delay {args.delay}); {len(short)} shorter"
            + (f" (first run ended at {first_end - started:.0f} s)" if short else "")
        )
        for gap, at, first, second in sorted(short)[:10]:
            print(f"  {gap:.3f} s at {at:.0f} s: {first} then {second}")
        # The fit starts once the TTL'd state is full (the TTL plus 5 min), at 10 min or later.
        fit_from = max(600.0, args.ttl_hours * 3600 + 300)
        warm = [(t, row) for t, row in usage.rows if fit_from <= t <= first_end - started]
        for name in sorted({k for _, row in usage.rows for k in row}):
            points = [(t, row[name]) for t, row in warm if name in row]
            low, high = min(m for _, m in points or [(0, 0)]), max(m for _, m in points or [(0, 0)])
            print(
                f"memory {name}: slope {slope_mb_per_hour(points):+.0f} MB/h from "
                f"{fit_from / 60:.0f} min ({len(points)} samples, {low:.0f}-{high:.0f} MB, "
                f"last {points[-1][1] if points else 0:.0f} MB)"
            )
        first_indexed = len([u for u, t in published.items() if t < first_end and u in indexed])
        print(
            f"CPU: {cpu_first:.0f} s in the first run, "
            f"{cpu_first / max(first_indexed, 1):.2f} s per article indexed"
            + (" (Flink cluster included)" if roots else "")
        )
        health = client.count(index=f"{prefix}-stats")["count"]
        print(
            f"ingestion-health documents: {health}, "
            f"{health / max(len(indexed), 1):.2f} per article indexed"
        )
        print(
            f"restart: {len(second)} page fetches, {refetched} of them already fetched in "
            f"the first run; the feeds listed {listed} items "
            f"({refetched / max(listed, 1):.1%} re-fetched)"
        )
        for server in servers:
            server.stop()
    drop_indices(client, prefix)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
