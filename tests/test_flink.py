"""The pipelines on a real Flink 1.19 session cluster (started from Maven jars by
``wirestream flink start``: a JobManager, two single-slot TaskManagers, the Beam job
server and a Python worker pool), into the real Elasticsearch.

Beam does not promise that its 2.62 job server works with the 2.77 SDK; these tests
are the guard: a WARC backfill of real pages at parallelism 2 (both workers busy, every
document once, the summary right, a re-run changing nothing), the streaming pipeline
against the sample site for a bounded time (documents indexed, dead letters in files a
user replays, ends on time, no job left running), Ctrl-C cancelling a Flink job, and
per-host politeness holding when two workers fetch from one host, and stories (copies
and a story across outlets) in the stream and after the backfill.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import re
import signal
import subprocess
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from pipeline.services import flink
from pipeline.services.sample_site import feed_urls
from tests.support.cli import doc_count, sink_counts, wirestream
from tests.support.processes import descendants, listening, loopback_only
from tests.support.real_pages import _CANONICAL, real_page_files, write_real_warc
from tests.support.sample_stream import UNIQUE_ARTICLES
from tests.support.stories import (
    articles_by_url,
    assert_grouped,
    publish_news,
    run_ok,
    stories_by_id,
    stories_profile,
)
from transforms.normalize import normalize_text

pytestmark = [pytest.mark.integration, pytest.mark.runner, pytest.mark.flink]

RECORDS = 160  # real pages; about 7.5 MB of WARC, 8 blocks of 1 MiB


@pytest.fixture(scope="module")
def cluster():
    """The local Flink cluster with two slots (stopped again if this module started it)."""
    running = flink.status()
    state = running or flink.start(slots=2)
    yield state
    if running is None:
        flink.stop()


def _rest(cluster, path: str) -> dict:
    port = cluster["ports"]["rest"]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as resp:
        return json.loads(resp.read())


def _jobs(cluster) -> list[dict]:
    return sorted(_rest(cluster, "/jobs/overview")["jobs"], key=lambda j: j["start-time"])


def _running(cluster) -> list[dict]:
    return [j for j in _jobs(cluster) if j["state"] not in ("FINISHED", "CANCELED", "FAILED")]


FETCH = "allow_private_addresses: true, timeout: 5, retries: 0"


def _profile(tmp_path: Path, settings, extra: str = "", fetch: str = FETCH) -> Path:
    es = settings.elasticsearch
    path = tmp_path / "profile.yaml"
    path.write_text(
        f"elasticsearch: {{url: '{es.url}', index_prefix: {es.index_prefix}, alias: {es.alias}, "
        "batch_size: 20, max_wait_seconds: 1}\n"
        f"fetch: {{{fetch}}}\n"
        f"dead_letter_dir: '{tmp_path / 'dead-letter'}'\n" + extra
    )
    return path


def test_warc_backfill_on_flink_at_parallelism_2(
    cluster, es_client, es_settings, shared_dir, tmp_path
):
    warc = tmp_path / "real.warc.gz"
    urls = write_real_warc(warc, shared_dir, RECORDS)
    profile = _profile(tmp_path, es_settings, "backfill: {warc_block_bytes: 1048576}\n")
    alias = es_settings.elasticsearch.alias
    summary_path = tmp_path / "summary.json"
    args = ("backfill", str(warc), "--config", str(profile), "--runner", "flink")
    first = wirestream(*args, "--no-progress", "--summary-json", str(summary_path))
    out, _ = first.communicate(timeout=900)
    assert first.returncode == 0, out[-5000:]
    assert "running on the local Flink cluster" in out

    summary = json.loads(summary_path.read_text())
    assert (summary["read"], summary["extracted"], summary["indexed"]) == (RECORDS,) * 3
    assert summary["failed"] == {} and summary["done"] == RECORDS
    assert sink_counts(out) == (RECORDS, RECORDS, 0, 0)

    # every document once, with its fields
    assert doc_count(es_client, alias) == RECORDS
    hits = es_client.search(index=alias, size=RECORDS + 10, query={"match_all": {}})["hits"]
    docs = [hit["_source"] for hit in hits["hits"]]
    assert sorted(d["url"] for d in docs) == sorted(urls)
    for doc in docs:
        assert doc["title"] and doc["word_count"] > 50 and doc["page_digest"]
        # idempotent under the rules of its language
        body = doc["body_normalized"]
        assert normalize_text(body, doc["language"]) == body
        assert doc["source"].startswith("site")
        # tagged by the model of its language; a page in another language by none
        if doc["language"] in ("en", "fr"):
            assert doc["entities"] and doc["entities_model"], doc["url"]
        else:
            assert not doc["entities"] and doc["entities_skipped"], doc["url"]

    # parallelism 2 for real: both subtasks of the reading-to-indexing stage read blocks
    job = _jobs(cluster)[-1]
    detail = _rest(cluster, f"/jobs/{job['jid']}")
    (stage,) = [
        v
        for v in detail["vertices"]
        if v["name"].startswith("MapPartition") and "Index warc" in v["name"]
    ]
    assert stage["parallelism"] == 2
    subtasks = _rest(cluster, f"/jobs/{job['jid']}/vertices/{stage['id']}")["subtasks"]
    assert all(s["metrics"]["read-records"] > 0 for s in subtasks), subtasks

    # stories (the pass after the job): records i and i + n are the same page under two
    # URLs, so each later one is a verbatim copy of the earlier, in its story
    assert "stories: 160 articles in" in out
    by_url = {d["url"]: d for d in docs}
    n = len(real_page_files(shared_dir))
    copies = [(urls[i], urls[i - n]) for i in range(n, RECORDS)]
    found = [(c, o) for c, o in copies if by_url[c]["duplicate_of"]]
    assert len(found) >= 25, len(found)
    for copy, original in found:
        assert by_url[copy]["duplicate_of"] == by_url[original]["copy_group"]
        assert by_url[copy]["story_id"] == by_url[original]["story_id"]
    assert all(d["story_id"] for d in docs)

    # a re-run finds everything indexed: same count, nothing extracted again
    second = wirestream(*args, "--no-progress")
    out, _ = second.communicate(timeout=600)
    assert second.returncode == 0, out[-5000:]
    assert f"skipped {RECORDS}: already_indexed {RECORDS}" in out
    assert "0 articles updated" in out  # the same stories
    assert doc_count(es_client, alias) == RECORDS
    assert not _running(cluster)


def test_stories_in_a_stream_on_flink(cluster, es_client, es_settings, shared_dir, tmp_path):
    outlets, urls, _late, _start = publish_news(shared_dir, tmp_path)
    try:
        profile = stories_profile(tmp_path, es_settings, outlets)
        run_ok("run", "--config", str(profile), "--runner", "flink", "--duration", "90")
        docs = articles_by_url(es_client, es_settings.elasticsearch.alias)
        assert len(docs) == 21
        story = assert_grouped(docs, urls, in_order=False)
        stories = stories_by_id(es_client, es_settings.elasticsearch.index_prefix)
        assert stories[story]["size"] == 6 and stories[story]["source_count"] == 3
        assert set(stories) == {d["story_id"] for d in docs.values()}
    finally:
        for outlet in outlets:
            outlet.server.stop()
    assert not _running(cluster)


def test_stream_on_flink_ends_on_time_with_replayable_dead_letters(
    cluster, es_client, es_settings, sample_site, tmp_path
):
    feeds = [*feed_urls(sample_site), {"name": "gone", "url": f"{sample_site.base_url}/gone.xml"}]
    listed = "\n".join(
        f"  - {{name: {f['name']}, url: '{f['url']}', interval: 5, language: en}}" for f in feeds
    )
    profile = _profile(tmp_path, es_settings, f"feeds:\n{listed}\n")
    duration = 45
    started = time.monotonic()
    proc = wirestream(
        "run", "--config", str(profile), "--duration", str(duration), "--runner", "flink"
    )
    out, _ = proc.communicate(timeout=600)
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, out[-5000:]
    assert elapsed < duration + 90, f"a {duration}s run took {elapsed:.0f}s"
    alias = es_settings.elasticsearch.alias
    assert doc_count(es_client, alias) == UNIQUE_ARTICLES
    entered, acknowledged, superseded, dead = sink_counts(out)
    assert entered == acknowledged + superseded and dead == 0
    assert not _running(cluster)

    # the missing feed's failures are in files under dead_letter_dir, which replay reads
    files = sorted((tmp_path / "dead-letter").glob("*.jsonl"))
    assert files, out[-3000:]
    records = [json.loads(line) for f in files for line in f.read_text().splitlines()]
    assert any(r["url"].endswith("/gone.xml") and r["stage"] == "poll" for r in records), records
    replay = wirestream("replay", str(tmp_path / "dead-letter"), "--config", str(profile))
    out, _ = replay.communicate(timeout=120)
    assert replay.returncode == 0, out
    assert "records from other stages" in out and "gone.xml" in out


def _live_heap_mb(cluster) -> list[float]:
    """Each TaskManager's heap in use after a full garbage collection, in MB (jcmd)."""
    jcmd = str(flink.find_java().parent / "jcmd")
    sizes = []
    for name, pid in cluster["pids"].items():
        if name.startswith("taskmanager"):
            subprocess.run([jcmd, str(pid), "GC.run"], capture_output=True, timeout=60)
            info = subprocess.run(
                [jcmd, str(pid), "GC.heap_info"], capture_output=True, text=True, timeout=60
            ).stdout
            sizes.append(int(re.search(r"heap\s+total \d+K, used (\d+)K", info)[1]) / 1024)
    return sizes


def _cluster_addresses(cluster) -> set[tuple[str, int]]:
    """Every (address, port) a process of the cluster (or a child of one) listens on."""
    pids = set(cluster["pids"].values())
    pids |= {child for pid in pids for child in descendants(pid)}
    found: set[tuple[str, int]] = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            found |= listening(pid)
    return found


def test_a_stream_ticking_every_second_keeps_taskmanager_heap_flat_on_loopback(
    cluster, es_client, es_settings, sample_site, tmp_path
):
    """The runner patches (deploy/flink/job-server/patches): Beam 2.62 kept a new state for
    every tick of the feed ticker, and at Flink's default key groups a 1 s tick filled a
    TaskManager's heap in about 90 s; and its servers (job, artifacts, the TaskManagers'
    Fn API servers, which exist while a job runs) listened on every interface."""
    listed = "\n".join(
        f"  - {{name: {f['name']}, url: '{f['url']}', interval: 5, language: en}}"
        for f in feed_urls(sample_site)
    )
    profile = _profile(
        tmp_path, es_settings, f"feeds:\n{listed}\nstream: {{poll_tick_seconds: 1}}\n"
    )
    duration = 150
    proc = wirestream(
        "run", "--config", str(profile), "--duration", str(duration), "--runner", "flink"
    )
    samples: list[tuple[float, list[float]]] = []  # (seconds since the job ran, live MB)
    started, addresses = None, set()
    while proc.poll() is None:
        time.sleep(10)
        if started is None and _running(cluster):
            started = time.monotonic()
        if started is not None and _running(cluster):
            samples.append((time.monotonic() - started, _live_heap_mb(cluster)))
            if 30 < samples[-1][0] < 45:
                addresses = _cluster_addresses(cluster)
    out, _ = proc.communicate()
    assert proc.returncode == 0, out[-5000:]
    assert _jobs(cluster)[-1]["state"] in ("FINISHED", "CANCELED"), _jobs(cluster)[-1]
    ports = cluster["ports"]
    assert {("127.0.0.1", ports["job"]), ("127.0.0.1", ports["rest"])} <= addresses
    assert len(addresses) > len(ports), addresses  # the TaskManagers' Fn API servers too
    assert loopback_only(addresses), addresses

    # live heap after warm-up: flat (unpatched it grew by MBs a second until out of memory)
    print(f"live heap, MB: {[(round(s), [round(m) for m in mb]) for s, mb in samples]}")
    settled = [mb for s, mb in samples if s >= 30]
    assert len(settled) >= 6, samples
    growth = [last - first for first, last in zip(settled[0], settled[-1], strict=True)]
    assert max(growth) < 24, samples


def test_ctrl_c_stops_the_flink_job_cleanly(cluster, es_client, es_settings, sample_site, tmp_path):
    """Ctrl-C: the workers stop polling (the stop marker), the CLI ends once what was in
    flight is written (the counters from Flink say so), prints them, writes no dead
    letters for work the cancel cut short, shows no traceback, and the job is cancelled."""
    listed = "\n".join(
        f"  - {{name: {f['name']}, url: '{f['url']}', interval: 3, language: en}}"
        for f in feed_urls(sample_site)
    )
    # a flush window of 1 + 40 + 5 s, which the stop must not wait out
    fetch = "allow_private_addresses: true, timeout: 40, retries: 0"
    profile = _profile(tmp_path, es_settings, f"feeds:\n{listed}\n", fetch)
    proc = wirestream("run", "--config", str(profile), "--runner", "flink")
    alias = es_settings.elasticsearch.alias
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and doc_count(es_client, alias) < UNIQUE_ARTICLES:
        time.sleep(2)
    assert doc_count(es_client, alias) == UNIQUE_ARTICLES, "not all indexed before the interrupt"
    assert len(_running(cluster)) == 1
    time.sleep(6)  # polls go on meanwhile: what the cancel used to cut short
    os.kill(proc.pid, signal.SIGINT)  # Ctrl-C
    interrupted = time.monotonic()
    out, _ = proc.communicate(timeout=180)
    took = time.monotonic() - interrupted
    assert proc.returncode == 0, out[-3000:]
    assert "everything in flight is written" in out, out[-3000:]
    assert took < 30, f"the stop took {took:.1f}s"
    assert "pipeline counters: " in out and "feed_items=" in out, out[-3000:]
    assert "Traceback" not in out, out[-5000:]
    assert not list((tmp_path / "dead-letter").glob("**/*.jsonl")), "dead letters written"
    assert not list((tmp_path / "dead-letter").glob(".stop-*")), "the stop marker is left"
    deadline = time.monotonic() + 60
    while _running(cluster) and time.monotonic() < deadline:
        time.sleep(1)
    assert not _running(cluster), "the Flink job outlived the CLI"
    assert _jobs(cluster)[-1]["state"] == "CANCELED"


class _TimedPages(ThreadingHTTPServer):
    """Serves the same real article under any path (an RSS feed under ``/feed/N.xml``,
    listing three stories of its own), after ``latency`` seconds, and logs each request's
    arrival (when its connection was accepted, before a handler thread starts: a loaded
    machine delayed handlers by up to 70 ms) and how many were in flight then."""

    daemon_threads = True

    def __init__(self, html: bytes, latency: float) -> None:
        self.html, self.latency = html, latency
        self.lock = threading.Lock()
        self.in_flight = 0
        self.accepted: dict[int, float] = {}
        self.log: list[tuple[float, int, str]] = []
        super().__init__(("127.0.0.1", 0), _TimedHandler)

    def process_request(self, request, client_address):
        self.accepted[id(request)] = time.time()
        super().process_request(request, client_address)


class _TimedHandler(BaseHTTPRequestHandler):
    server: _TimedPages

    def do_GET(self):  # noqa: N802
        server = self.server
        with server.lock:
            server.in_flight += 1
            arrived = server.accepted.pop(id(self.request), time.time())
            server.log.append((arrived, server.in_flight, self.path))
        try:
            time.sleep(server.latency)
            kind = "text/html"
            body = server.html.replace(b"</title>", f" {self.path}</title>".encode(), 1)
            if self.path.startswith("/feed/"):
                kind, body = "application/rss+xml", self.feed()
            self.send_response(200)
            self.send_header("Content-Type", f"{kind}; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        finally:
            with server.lock:
                server.in_flight -= 1

    def feed(self) -> bytes:
        number = self.path.removeprefix("/feed/").removesuffix(".xml")
        base = f"http://127.0.0.1:{self.server.server_address[1]}"
        items = "".join(
            f"<item><title>story {number}-{k}</title><link>{base}/story/{number}-{k}</link></item>"
            for k in range(3)
        )
        return f'<?xml version="1.0"?><rss version="2.0"><channel>{items}</channel></rss>'.encode()

    def log_message(self, *_args):
        pass


def test_politeness_holds_across_two_workers(cluster, es_client, es_settings, shared_dir, tmp_path):
    page = real_page_files(shared_dir)[0]
    html = _CANONICAL.sub(b"", gzip.decompress(page.read_bytes()))
    hosts = [_TimedPages(html, latency=0.3) for _ in range(4)]  # four hosts: 127.0.0.1:PORT
    for server in hosts:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    urls = [f"http://127.0.0.1:{s.server_address[1]}/story/{n}" for s in hosts for n in range(6)]
    listing = tmp_path / "urls.txt"
    listing.write_text("\n".join(urls) + "\n")
    delay = 1.0
    limits = f"respect_robots: false, host_min_delay: {delay}, host_max_concurrent: 1"
    profile = _profile(tmp_path, es_settings, fetch=f"{FETCH}, {limits}")
    try:
        proc = wirestream(
            "backfill", str(listing), "--config", str(profile), "--runner", "flink", "--no-progress"
        )
        out, _ = proc.communicate(timeout=600)
    finally:
        for server in hosts:
            server.shutdown()
    assert proc.returncode == 0, out[-5000:]
    assert doc_count(es_client, es_settings.elasticsearch.alias) == len(urls)

    # the fetching stage ran on both workers
    job = _jobs(cluster)[-1]
    detail = _rest(cluster, f"/jobs/{job['jid']}")
    fetching = [v for v in detail["vertices"] if "FetchPages" in v["name"]]
    assert fetching and all(v["parallelism"] == 2 for v in fetching)

    # every host saw one request at a time, their starts at least `delay` apart
    for server in hosts:
        starts = sorted(t for t, _, path in server.log if path.startswith("/story/"))
        assert len(starts) == 6
        gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
        assert min(gaps) >= delay, gaps
        assert max(n for _, n, _ in server.log) == 1


def test_feed_polls_and_pages_are_paced_per_host_across_two_workers_in_a_stream(
    cluster, es_client, es_settings, shared_dir, tmp_path
):
    """Several feeds per host, two workers: every request to a host, feed poll or page,
    starts at least ``host_min_delay`` after the previous one."""
    page = real_page_files(shared_dir)[0]
    html = _CANONICAL.sub(b"", gzip.decompress(page.read_bytes()))
    hosts = [_TimedPages(html, latency=0.2) for _ in range(3)]
    for server in hosts:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    listed = "\n".join(
        f"  - {{name: h{h}f{n}, url: 'http://127.0.0.1:{s.server_address[1]}/feed/{n}.xml', "
        "interval: 20, language: en}"
        for h, s in enumerate(hosts)
        for n in range(4)
    )
    delay = 1.0
    limits = f"respect_robots: false, host_min_delay: {delay}, host_max_concurrent: 1"
    profile = _profile(tmp_path, es_settings, f"feeds:\n{listed}\n", f"{FETCH}, {limits}")
    try:
        run_ok("run", "--config", str(profile), "--runner", "flink", "--duration", "75")
    finally:
        for server in hosts:
            server.shutdown()
    assert doc_count(es_client, es_settings.elasticsearch.alias) == 3 * 4 * 3
    for server in hosts:
        polls = [t for t, _, path in server.log if path.startswith("/feed/")]
        pages = [t for t, _, path in server.log if path.startswith("/story/")]
        assert len(polls) >= 8 and len(pages) == 12, server.log  # each feed twice or more
        starts = sorted(polls + pages)
        gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
        assert min(gaps) >= delay, sorted(server.log)
    # What spaces a poll and a page (two keyed steps, one key each): subtask i of every
    # step holds the same lanes, and all subtasks i ran on one TaskManager (one worker).
    job = _jobs(cluster)[-1]
    placed = {}
    for vertex in _rest(cluster, f"/jobs/{job['jid']}")["vertices"]:
        if vertex["parallelism"] == 2:
            subtasks = _rest(cluster, f"/jobs/{job['jid']}/vertices/{vertex['id']}")["subtasks"]
            placed[vertex["name"]] = tuple(s["taskmanager-id"] for s in subtasks)
    assert len(placed) > 5 and len(set(placed.values())) == 1, placed


def test_stopping_the_cluster_cancels_its_jobs_and_their_clis_end(
    cluster, es_client, es_settings, shared_dir, tmp_path
):
    warc = tmp_path / "real.warc.gz"
    write_real_warc(warc, shared_dir, RECORDS)
    profile = _profile(tmp_path, es_settings)
    proc = wirestream("backfill", str(warc), "--config", str(profile), "--no-progress")
    deadline = time.monotonic() + 300
    while not _running(cluster) and time.monotonic() < deadline:
        time.sleep(1)
    assert _running(cluster), "the backfill did not start on the cluster"
    stopped = wirestream("flink", "stop")
    out, _ = stopped.communicate(timeout=120)
    assert stopped.returncode == 0 and "cancelling running job" in out, out
    out, _ = proc.communicate(timeout=120)  # the backfill's CLI ends instead of waiting
    assert proc.returncode != 0, out[-3000:]
    assert flink.status() is None
