"""End to end: a backfill of every source type on Prism into the real Elasticsearch,
killed half-way and run again: exactly one document per article."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests

from tests.support.cli import doc_count, sink_counts, wirestream
from tests.support.warcs import PAGES, build_warc

pytestmark = [pytest.mark.integration, pytest.mark.runner]


def _profile(tmp_path: Path, settings) -> Path:
    es = settings.elasticsearch
    path = tmp_path / "profile.yaml"
    path.write_text(
        f"elasticsearch: {{url: '{es.url}', index_prefix: {es.index_prefix}, alias: {es.alias}, "
        "batch_size: 10, max_wait_seconds: 1}\n"
        "fetch: {allow_private_addresses: true, timeout: 5, retries: 0, host_min_delay: 0}\n"
        f"dead_letter_dir: '{tmp_path / 'dead-letter'}'\n"
    )
    return path


def _inputs(tmp_path: Path, site, shared_dir: Path) -> list[str]:
    """A WARC, the seeds (a text folder), a URL list and a folder of saved feeds."""
    build_warc(tmp_path / "archive.warc.gz")
    ferry = f"{site.base_url}/harbor-gazette/2026/03/ferry-strike-averted.html"
    (tmp_path / "urls.txt").write_text(f"{ferry}\n{ferry}?utm_source=x\n{site.base_url}/nope\n")
    feeds = tmp_path / "feeds"
    feeds.mkdir()
    feed = requests.get(f"{site.base_url}/northwind-times/atom.xml", timeout=10).content
    (feeds / "northwind.xml").write_bytes(feed)
    return [
        str(tmp_path / "archive.warc.gz"),
        str(shared_dir / "seeds"),
        str(tmp_path / "urls.txt"),
        str(feeds),
    ]


def _backfill(profile: Path, inputs: list[str]) -> subprocess.Popen:
    return wirestream("backfill", *inputs, "--config", str(profile))


def _kill_everything(proc: subprocess.Popen) -> None:
    """SIGKILL the launcher and its pipeline child (own session) with the runner."""
    children = subprocess.run(
        ["pgrep", "-P", str(proc.pid)], capture_output=True, text=True
    ).stdout.split()
    for pid in map(int, children):
        os.killpg(pid, signal.SIGKILL)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)


def _summary(out: str) -> tuple[int, ...]:
    found = re.search(
        r"read (\d+), extracted (\d+), indexed (\d+), skipped as duplicate (\d+)", out
    )
    assert found, out
    return tuple(map(int, found.groups()))


def _reason(out: str, reason: str) -> int:
    found = re.search(rf"\b{reason} (\d+)", out)
    return int(found.group(1)) if found else 0


def test_backfill_every_source_killed_then_rerun(
    es_client, es_settings, sample_site, shared_dir, tmp_path
):
    profile = _profile(tmp_path, es_settings)
    inputs = _inputs(tmp_path, sample_site, shared_dir)
    alias = es_settings.elasticsearch.alias

    first = _backfill(profile, inputs)
    deadline = time.monotonic() + 240
    while doc_count(es_client, alias) == 0 and first.poll() is None:
        assert time.monotonic() < deadline, "nothing indexed"
        time.sleep(0.5)
    _kill_everything(first)
    partial = doc_count(es_client, alias)

    second = _backfill(profile, inputs)
    out, _ = second.communicate(timeout=400)
    assert second.returncode == 0, out
    # 11 pages in the WARC, 3 seeds, and from the sample server: the ferry page (listed
    # twice) and the Northwind feed's 4 entries (one page, with a tracking parameter).
    expected = len(PAGES) + 3 + 1 + 4
    hits = es_client.search(index=alias, size=100, query={"match_all": {}})["hits"]["hits"]
    ids = [h["_id"] for h in hits]
    assert len(ids) == len(set(ids)) == expected == doc_count(es_client, alias) >= partial

    # the restart resumed: what the first run indexed was skipped before extraction
    read, extracted, indexed, duplicates = _summary(out)
    resumed = _reason(out, "already_indexed")
    assert resumed >= partial > 0, out
    assert indexed + resumed >= expected, out
    assert "not_html 1" in out and "redirect 1" in out
    assert re.search(r"failed \d+: .*fetch:http_404 1", out), out
    assert "read:" in out  # the record cut off mid-stream
    entered, acknowledged, superseded, dead = sink_counts(out)
    assert entered == acknowledged + superseded + dead and "GAP" not in out, out

    # once complete, a re-run extracts nothing and leaves the same documents
    third = _backfill(profile, inputs)
    out, _ = third.communicate(timeout=400)
    assert third.returncode == 0, out
    read, extracted, indexed, duplicates = _summary(out)
    assert (extracted, indexed) == (0, 0), out
    assert _reason(out, "already_indexed") >= expected, out  # + the repeated WARC record
    assert doc_count(es_client, alias) == expected

    docs = {h["_source"]["canonical_url"]: h["_source"] for h in hits}
    market = docs["https://news.example/valley-ledger/news/2026-03-09-market-hall-reopens.html"]
    assert "£" in market["body"] and market["fetched_at"].startswith("2026-03-18T10:00:00")
    seed = docs["archive://seeds/002_7f41fef35e9117f7.txt"]
    assert seed["body_normalized"].endswith(" .") and seed["source"] == "seeds"
    assert all(d["body_normalized"] and d["title"] for d in docs.values())


def test_backfill_filters_by_date_and_source(es_client, es_settings, shared_dir, tmp_path):
    from datetime import datetime, timezone

    from tests.support.warcs import page_bytes, page_url
    from transforms.extract import extract_article
    from transforms.fetch import decode_html

    build_warc(tmp_path / "archive.warc.gz", duplicate=False)
    since = datetime(2026, 3, 12, tzinfo=timezone.utc)
    until = datetime(2026, 3, 16, tzinfo=timezone.utc)
    # what the filter should keep, from the same plain functions the pipeline uses
    published = {
        page_url(p): extract_article(decode_html(page_bytes(p)), page_url(p)).published_at
        for p in PAGES
    }
    expected = {url for url, when in published.items() if when and since <= when < until}
    assert 0 < len(expected) < len(PAGES)

    proc = _backfill(
        _profile(tmp_path, es_settings),
        [str(tmp_path / "archive.warc.gz"), str(shared_dir / "seeds"),
         "--since", "2026-03-12", "--until", "2026-03-16", "--source", "news.example"],
    )  # fmt: skip
    out, _ = proc.communicate(timeout=400)
    assert proc.returncode == 0, out
    alias = es_settings.elasticsearch.alias
    es_client.indices.refresh(index=alias)
    hits = es_client.search(index=alias, size=100, query={"match_all": {}})["hits"]["hits"]
    assert {h["_source"]["canonical_url"] for h in hits} == expected
    # the seeds are another source and undated; the other pages fall outside the dates
    assert re.search(r"other_source 3|undated 3", out), out
    assert re.search(r"(before_since|after_until) \d+", out), out


def test_backfill_on_every_core_by_default(es_client, es_settings, shared_dir, tmp_path):
    """Every core without a JVM (docs/backfill.md#runners): by default a backfill runs on
    Beam's DirectRunner with a worker process per core, with the same documents, counters
    and reconciliation as Prism, a progress bar over the index, and a re-run duplicates
    nothing."""
    from tests.support.real_pages import write_real_warc

    urls = write_real_warc(tmp_path / "real.warc.gz", shared_dir, 40)
    args = [str(tmp_path / "real.warc.gz")]
    profile = _profile(tmp_path, es_settings)
    proc = _backfill(profile, args)
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-5000:]
    if (os.cpu_count() or 1) > 1:
        assert f"DirectRunner: {os.cpu_count()} worker processes" in out, out[-3000:]
    assert re.search(r"backfill, indexed: .*40/40", out), out[-3000:]
    assert sink_counts(out) == (40, 40, 0, 0), out[-3000:]
    seconds = float(re.search(r"backfill finished in ([\d.]+)s", out).group(1))
    assert seconds > 1  # timed from before the job, not from when the runner returned
    alias = es_settings.elasticsearch.alias
    assert doc_count(es_client, alias) == 40
    rerun = _backfill(profile, [*args, "--redo", "--no-progress"])
    out, _ = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, out[-5000:]
    assert doc_count(es_client, alias) == 40
    hits = es_client.search(index=alias, size=100, query={"match_all": {}})["hits"]["hits"]
    assert sorted(h["_source"]["url"] for h in hits) == sorted(urls)


def test_every_core_and_prism_write_identical_documents(
    es_client, es_settings, shared_dir, tmp_path
):
    """The default runner (a worker process per core) and Prism (one process) turn the
    same archive into the same documents: same ids, same fields, same values."""
    from tests.support.real_pages import write_real_warc
    from transforms.index.names import template_name

    write_real_warc(tmp_path / "real.warc.gz", shared_dir, 40)
    es = es_settings.elasticsearch
    prism = es_settings.model_copy(
        update={"elasticsearch": es.model_copy(update={"index_prefix": f"{es.index_prefix}p",
                                                         "alias": f"{es.alias}p"})}
    )  # fmt: skip
    runs = {}
    try:
        for name, settings, runner in (
            ("default", es_settings, []),
            ("prism", prism, ["--runner", "prism"]),
        ):
            profile_dir = tmp_path / name
            profile_dir.mkdir()
            proc = _backfill(
                _profile(profile_dir, settings),
                [str(tmp_path / "real.warc.gz"), "--no-progress", *runner],
            )
            out, _ = proc.communicate(timeout=600)
            assert proc.returncode == 0, out[-5000:]
            alias = settings.elasticsearch.alias
            es_client.indices.refresh(index=alias)
            hits = es_client.search(index=alias, size=100, query={"match_all": {}})["hits"]["hits"]
            runs[name] = {h["_id"]: h["_source"] for h in hits}
    finally:  # another prefix: the fixture removes only its own
        names = list(es_client.indices.get(index=f"{es.index_prefix}p-*", allow_no_indices=True))
        if names:
            es_client.indices.delete(index=",".join(names))
        es_client.options(ignore_status=404).indices.delete_index_template(
            name=f"{template_name(prism.elasticsearch)}*"
        )
    assert len(runs["default"]) == 40
    assert runs["default"].keys() == runs["prism"].keys()
    for doc_id, document in runs["default"].items():
        assert document == runs["prism"][doc_id], document["url"]
