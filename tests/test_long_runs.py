"""Runs at the length and size users work at, on Prism into the real Elasticsearch:
a stream past the job service's old five-minute deadline with items appearing as
it runs, repeated backfills of 820 real pages that must lose nothing, and a backfill
killed mid-run that keeps its work, leaves no process behind and resumes."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from pipeline.services.sample_site import LiveFeed
from tests.support.cli import doc_count, sink_counts, wirestream
from tests.support.processes import alive, descendants
from tests.support.real_pages import _CANONICAL, real_page_files, write_real_warc

pytestmark = [pytest.mark.integration, pytest.mark.runner, pytest.mark.long]


def _profile(tmp_path: Path, settings, enrich: bool = True, extra: str = "") -> Path:
    es = settings.elasticsearch
    path = tmp_path / "profile.yaml"
    path.write_text(
        f"elasticsearch: {{url: '{es.url}', index_prefix: {es.index_prefix}, alias: {es.alias}}}\n"
        f"enrich: {{enabled: {str(enrich).lower()}}}\n"
        "fetch: {allow_private_addresses: true, timeout: 5, retries: 0}\n"
        f"dead_letter_dir: '{tmp_path / 'dead-letter'}'\n" + extra
    )
    return path


def _indexed_urls(es_client, alias: str) -> list[str]:
    es_client.indices.refresh(index=alias)
    hits = es_client.search(index=alias, size=10_000, source=["url"], query={"match_all": {}})[
        "hits"
    ]["hits"]
    return [h["_source"]["url"] for h in hits]


def _left_running(pids: set[int], wait: float = 20) -> list[int]:
    """Return those of ``pids`` still running (not zombies) after up to ``wait`` seconds."""
    deadline = time.monotonic() + wait
    while True:
        running = [pid for pid in pids if alive(pid) and _state(pid) != "Z"]
        if not running or time.monotonic() > deadline:
            return running
        time.sleep(0.2)


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


def _parent(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as handle:
        return int(handle.read().rsplit(")", 1)[1].split()[1])


def _clear(es_client, prefix: str) -> None:
    names = list(es_client.indices.get(index=f"{prefix}-*", allow_no_indices=True))
    if names:
        es_client.indices.delete(index=",".join(names))


# --- a stream of 6.5 minutes -----------------------------------------------------------


def test_stream_runs_past_five_minutes_and_indexes_every_new_item(
    es_client, es_settings, web, shared_dir, tmp_path
):
    pages = [
        _CANONICAL.sub(b"", gzip.decompress(p.read_bytes())) for p in real_page_files(shared_dir)
    ]
    live = LiveFeed(web, pages)
    profile = _profile(
        tmp_path,
        es_settings,
        extra=f"feeds:\n  - {{name: live, url: '{live.feed_url}', interval: 5, language: en}}\n",
    )
    duration = 400  # the job service's default deadline ended every run at ~300 s
    started = time.monotonic()
    proc = wirestream("run", "--config", str(profile), "--duration", str(duration))
    live.thread.start()
    try:
        time.sleep(duration - 60)  # the last items appear a minute before the end
    finally:
        live.stop.set()
    out, _ = proc.communicate(timeout=duration + 300)
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, out[-5000:]
    assert "DEADLINE_EXCEEDED" not in out
    assert elapsed > 330, "the run ended before the old limit could bite"
    published = live.published()
    assert len(published) > 80
    indexed = _indexed_urls(es_client, es_settings.elasticsearch.alias)
    assert sorted(indexed) == sorted(published), (
        f"{len(set(published) - set(indexed))} of {len(published)} items not indexed\n"
        + out[-3000:]
    )
    assert not list((tmp_path / "dead-letter").glob("*.jsonl"))
    entered, acknowledged, superseded, dead = sink_counts(out)
    assert entered == acknowledged + superseded and dead == 0 and "GAP" not in out, out[-3000:]
    assert acknowledged >= len(published)


# --- backfills of 820 real pages ---------------------------------------------------------

RECORDS = 820


def _backfill(warc: Path, profile: Path, summary: Path) -> subprocess.Popen:
    return wirestream(
        "backfill", str(warc), "--config", str(profile), "--no-progress",
        "--summary-json", str(summary),
    )  # fmt: skip


def test_repeated_large_backfills_lose_nothing(es_client, es_settings, shared_dir, tmp_path):
    """Before the fix, runs like these lost 0-155 of 820 documents with exit 0."""
    warc = tmp_path / "real.warc.gz"
    urls = write_real_warc(warc, shared_dir, RECORDS, hosts=10)
    profile = _profile(tmp_path, es_settings, enrich=False)
    prefix, alias = es_settings.elasticsearch.index_prefix, es_settings.elasticsearch.alias
    for run in range(3):
        _clear(es_client, prefix)  # each run does the whole work again
        summary_path = tmp_path / f"summary-{run}.json"
        proc = _backfill(warc, profile, summary_path)
        out, _ = proc.communicate(timeout=900)
        assert proc.returncode == 0, out[-5000:]
        summary = json.loads(summary_path.read_text())
        sink = summary["sink"]
        assert sink == {
            "entered": RECORDS,
            "acknowledged": RECORDS,
            "superseded": 0,
            "dead_lettered": 0,
            "gap": 0,
            "waited_seconds": 0.0,  # the node was up: the sink never waited for it
        }, (run, summary)
        indexed = _indexed_urls(es_client, alias)
        assert len(indexed) == len(set(indexed)) == RECORDS, run
        assert set(indexed) == set(urls), run


def _settled_count(es_client, alias: str, quiet: float = 3.0) -> int:
    """Return the document count once it stops moving: Elasticsearch finishes a bulk
    request the killed client had already sent (5 documents landed after the kill once)."""
    count, since = doc_count(es_client, alias), time.monotonic()
    deadline = since + 60
    while time.monotonic() - since < quiet and time.monotonic() < deadline:
        time.sleep(0.5)
        now = doc_count(es_client, alias)
        if now != count:
            count, since = now, time.monotonic()
    return count


def test_killed_backfill_keeps_its_work_and_resumes(es_client, es_settings, shared_dir, tmp_path):
    # more than a sink batch (200) per worker: the killed run keeps some, not all
    records = 1000
    warc = tmp_path / "real.warc.gz"
    write_real_warc(warc, shared_dir, records, hosts=10)
    profile = _profile(tmp_path, es_settings, enrich=False)
    alias = es_settings.elasticsearch.alias

    first = _backfill(warc, profile, tmp_path / "first.json")
    deadline = time.monotonic() + 300
    while doc_count(es_client, alias) < 100:
        assert first.poll() is None, first.communicate()[0][-3000:]
        assert time.monotonic() < deadline, "fewer than 100 documents indexed in 300 s"
        time.sleep(0.5)
    pipeline_processes = descendants(first.pid)
    assert len(pipeline_processes) >= 2  # the pipeline process and the runner's workers
    os.killpg(first.pid, signal.SIGKILL)  # the CLI's process group, as `kill -9 -PGID` does
    first.communicate(timeout=30)
    left = _left_running(pipeline_processes)
    assert not left, f"processes left running after the CLI was killed: {left}"
    kept = _settled_count(es_client, alias)
    assert 100 <= kept < records

    summary_path = tmp_path / "second.json"
    second = _backfill(warc, profile, summary_path)
    out, _ = second.communicate(timeout=900)
    assert second.returncode == 0, out[-5000:]
    summary = json.loads(summary_path.read_text())
    assert summary["skipped"].get("already_indexed") == kept, summary
    assert summary["extracted"] == records - kept, summary  # resumed, not redone
    assert doc_count(es_client, alias) == records
    assert summary["sink"]["gap"] == 0


def test_a_crashed_pipeline_process_fails_the_cli_and_leaves_nothing(
    es_client, es_settings, shared_dir, tmp_path
):
    warc = tmp_path / "real.warc.gz"
    write_real_warc(warc, shared_dir, 1000, hosts=10)  # still running at its first batch
    proc = _backfill(warc, _profile(tmp_path, es_settings, enrich=False), tmp_path / "s.json")
    deadline = time.monotonic() + 120
    while doc_count(es_client, es_settings.elasticsearch.alias) == 0:
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.5)
    processes = descendants(proc.pid)
    (child,) = [pid for pid in processes if _parent(pid) == proc.pid]  # the pipeline process
    os.kill(child, signal.SIGSEGV)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert "died of SIGSEGV" in out, out[-3000:]
    assert not _left_running(processes)
