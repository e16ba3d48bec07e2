"""OpenSearch as the search engine (``elasticsearch.engine: opensearch``), on the real
OpenSearch 2.19 node the test script starts on 127.0.0.1:9201: the stream over the sample
site and its restart, a backfill and its re-run, dead letters replayed, the summary, and
what a refused write becomes. The same code paths as Elasticsearch, through opensearch-py."""

from __future__ import annotations

import pytest
import yaml

from pipeline.services.sample_site import feed_urls
from tests.support.articles import sample_article
from tests.support.sample_stream import UNIQUE_ARTICLES
from tests.support.stories import run_ok
from transforms.dead_letters import Failure, dead_letter_line, write_dead_letter_file
from transforms.index.bulk import bulk_index
from transforms.index.documents import to_action

pytestmark = [pytest.mark.integration]


def profile(tmp_path, settings, **sections) -> str:
    es = settings.elasticsearch
    data = {
        "elasticsearch": {
            "engine": "opensearch",
            "url": es.url,
            "index_prefix": es.index_prefix,
            "alias": es.alias,
            "batch_size": 20,
            "max_wait_seconds": 1,
        },
        "fetch": {"allow_private_addresses": True, "timeout": 5, "retries": 0},
        "dead_letter_dir": settings.dead_letter_dir,
        **sections,
    }
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def docs(os_client, alias: str) -> dict[str, dict]:
    os_client.indices.refresh(index=alias)
    hits = os_client.search(index=alias, size=1000, query={"match_all": {}})["hits"]["hits"]
    return {h["_id"]: h["_source"] for h in hits}


@pytest.mark.runner
def test_stream_into_opensearch_and_a_restart_duplicates_nothing(
    os_client, os_settings, sample_site, tmp_path
):
    feeds = [{**f, "interval": 5, "language": "en"} for f in feed_urls(sample_site)]
    config = profile(tmp_path, os_settings, feeds=feeds, stats={"window_seconds": 5})
    alias = os_settings.elasticsearch.alias

    out = run_ok("run", "--config", config, "--duration", "30")

    first = docs(os_client, alias)
    assert len(first) == UNIQUE_ARTICLES, out[-3000:]
    assert all(d["body_normalized"] and d["story_id"] for d in first.values())
    assert {d["publisher"] for d in first.values()} >= {"harbor-gazette", "valley-ledger"}
    prefix = os_settings.elasticsearch.index_prefix
    stats = os_client.count(index=f"{prefix}-stats")["count"]
    assert stats > 0  # ingestion health written too
    stories = os_client.count(index=f"{prefix}-stories")["count"]
    assert 0 < stories <= UNIQUE_ARTICLES

    again = run_ok("run", "--config", config, "--duration", "20")

    assert docs(os_client, alias).keys() == first.keys(), again[-3000:]
    summary = run_ok("summary", "--config", config)
    assert f"{UNIQUE_ARTICLES} documents in '{alias}'" in summary


@pytest.mark.runner
def test_backfill_into_opensearch_and_its_rerun(os_client, os_settings, sample_site, tmp_path):
    pages = [
        "harbor-gazette/2026/03/seawall-funding.html",
        "northwind-times/2026/03/11/transit-budget-vote.html",
        "valley-ledger/news/2026-03-09-market-hall-reopens.html",
    ]
    urls = tmp_path / "urls.txt"
    urls.write_text("".join(f"{sample_site.url(p)}\n" for p in pages))
    config = profile(tmp_path, os_settings)
    args = ("backfill", str(urls), "--config", config, "--no-progress")

    out = run_ok(*args)

    indexed = docs(os_client, os_settings.elasticsearch.alias)
    assert {d["url"] for d in indexed.values()} == {sample_site.url(p) for p in pages}, out
    assert "sink: 3 entered = 3 acknowledged" in out

    resumed = run_ok(*args)  # already indexed with the same content: looked up, skipped

    assert "read 3, extracted 0, indexed 0" in resumed, resumed

    rerun = run_ok(*args, "--redo")  # extracted and written again: same ids, no duplicates

    assert docs(os_client, os_settings.elasticsearch.alias).keys() == indexed.keys(), rerun
    assert "sink: 3 entered" in rerun and "0 dead-lettered" in rerun


def test_replay_and_a_refused_write_on_opensearch(os_client, os_settings, tmp_path):
    es = os_settings.elasticsearch
    actions = [to_action(sample_article(n), es.index_prefix, versioned=True) for n in range(3)]
    lines = [dead_letter_line(Failure("index", "unavailable", "u", "down", a)) for a in actions]
    directory = str(tmp_path / "letters")
    write_dead_letter_file(directory, "index", lines)
    config = profile(tmp_path, os_settings)

    out = run_ok("replay", directory, "--config", config)

    assert "re-indexed 3 of 3 documents; 0 still failing" in out
    assert len(docs(os_client, es.alias)) == 3
    older = to_action(sample_article(0), es.index_prefix, versioned=True)
    older["version"] -= 1000  # an earlier crawl of the same page: superseded, not an error
    bad = to_action(sample_article(7), es.index_prefix)
    bad["_source"]["published_at"] = "not a date"  # refused by the mapping
    indexed, failed = bulk_index(os_client, [older, bad], es)
    assert indexed == 0
    assert sorted(reason for _, reason, _ in failed) == ["rejected_400", "superseded"]
    assert len(docs(os_client, es.alias)) == 3
