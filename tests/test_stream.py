"""End to end: the real streaming pipeline on Prism, polling the sample news site on
127.0.0.1 and writing into the real local Elasticsearch."""

import os
import re
import signal
import time
from urllib.parse import urlsplit

import pytest

from tests.support.cli import wirestream as _wirestream
from tests.support.processes import alive, descendants
from tests.support.sample_stream import UNIQUE_ARTICLES, stream_profile
from transforms.normalize import normalize_text

pytestmark = [pytest.mark.integration, pytest.mark.runner]

FIELDS = {
    "url",
    "canonical_url",
    "source",
    "publisher",
    "feed_url",
    "title",
    "title_normalized",
    "body",
    "body_normalized",
    "authors",
    "published_at",
    "fetched_at",
    "language",
    "word_count",
    "content_hash",
    "entities",
}


def _docs(es_client, alias):
    es_client.indices.refresh(index=alias)
    hits = es_client.search(index=alias, size=100, query={"match_all": {}})["hits"]["hits"]
    return [h["_source"] | {"_id": h["_id"]} for h in hits]


def test_stream_indexes_sample_site_idempotently(es_client, es_settings, sample_site, tmp_path):
    profile = stream_profile(tmp_path, sample_site, es_settings)
    alias = es_settings.elasticsearch.alias
    first = _wirestream("run", "--config", str(profile), "--duration", "12")
    out, _ = first.communicate(timeout=300)
    assert first.returncode == 0, out
    assert f"{UNIQUE_ARTICLES} documents in '{alias}'" in out

    docs = _docs(es_client, alias)
    assert len(docs) == UNIQUE_ARTICLES
    for doc in docs:
        missing = {f for f in FIELDS if doc.get(f) in (None, "", [])}
        assert not missing, (doc["url"], missing)
        body = doc["body_normalized"]
        assert body == body.lower()
        assert "\n\n" not in body and body == body.strip()
        assert all(line == line.strip() and "  " not in line for line in body.split("\n"))
        assert normalize_text(body) == body  # already in the seed format: a fixed point
        assert "utm_" not in doc["canonical_url"]
        assert doc["word_count"] > 150
    # boilerplate of the sample pages stays out of the bodies
    assert not any("Sign up" in d["body"] or "Related stories" in d["body"] for d in docs)
    # the windows-1252 page decoded right
    (market,) = [d for d in docs if "market-hall" in d["url"]]
    assert "£" in market["body"] and "café" in market["body"].lower()
    # entities are present and typed
    people = {p for d in docs for p in d["entities"].get("people", [])}
    places = {p for d in docs for p in d["entities"].get("places", [])}
    orgs = {p for d in docs for p in d["entities"].get("organizations", [])}
    assert len(people) >= 10 and len(places) >= 5 and len(orgs) >= 5
    assert {d["publisher"] for d in docs} >= {"harbor-gazette", "northwind-times", "valley-ledger"}

    # the same input again (a restart): same documents, no duplicates, and no article
    # page fetched again: the feeds are polled, what they list is found in the index
    pages = {urlsplit(d["url"]).path for d in docs}
    fetched = [r.path for r in sample_site.requests if urlsplit(r.path).path in pages]
    assert len(fetched) >= UNIQUE_ARTICLES  # the first run fetched them
    sample_site.clear_requests()
    second = _wirestream("run", "--config", str(profile), "--duration", "8")
    out, _ = second.communicate(timeout=300)
    assert second.returncode == 0, out
    again = _docs(es_client, alias)
    assert sorted(d["_id"] for d in again) == sorted(d["_id"] for d in docs)
    polled = [r.path for r in sample_site.requests]
    assert polled, "the restart polled no feed"
    assert not [p for p in polled if urlsplit(p).path in pages], polled
    skipped = re.search(r"skipped\.already_indexed=(\d+)", out)
    assert skipped and int(skipped.group(1)) >= UNIQUE_ARTICLES, out[-3000:]


def test_ctrl_c_flushes_and_stops_cleanly(es_client, es_settings, sample_site, tmp_path):
    # a flush window of 1 + 40 + 5 s, which the stop must not wait out
    profile = stream_profile(tmp_path, sample_site, es_settings, interval=3, fetch_timeout=40)
    proc = _wirestream("run", "--config", str(profile))
    alias = es_settings.elasticsearch.alias
    deadline = time.monotonic() + 180
    count = 0
    while time.monotonic() < deadline and count == 0:
        time.sleep(2)
        if es_client.indices.exists_alias(name=alias):
            es_client.indices.refresh(index=alias)
            count = es_client.count(index=alias)["count"]
    assert count > 0, "nothing indexed before the interrupt"
    runner_pids = descendants(proc.pid)
    assert len(runner_pids) >= 2  # the pipeline's child process and Prism
    os.kill(proc.pid, signal.SIGINT)  # what Ctrl-C sends to the foreground process
    interrupted = time.monotonic()
    out, _ = proc.communicate(timeout=120)
    took = time.monotonic() - interrupted
    assert proc.returncode == 0, out
    assert "everything in flight is written" in out, out[-3000:]
    assert took < 20, f"the stop took {took:.1f}s"
    assert "pipeline counters: " in out and "Traceback" not in out and "Bundle" not in out, out
    assert re.search(rf"{UNIQUE_ARTICLES} documents in '{alias}'", out), out
    assert not list((tmp_path / "dead-letter").glob("**/*.jsonl")), "dead letters written"
    assert not [pid for pid in runner_pids if alive(pid)], "runner processes left running"
