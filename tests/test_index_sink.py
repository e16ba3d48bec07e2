"""Bulk writes to the real local Elasticsearch: idempotent ids, rejections and outages
go to dead letters, and dead letters replay."""

import socket

import pytest

from pipeline.cli import main as cli_main
from tests.support.articles import sample_article
from tests.support.paths import ES_URL
from transforms.dead_letters import (
    Failure,
    dead_letter_line,
    read_dead_letters,
    write_dead_letter_file,
)
from transforms.index.bulk import bulk_index
from transforms.index.client import make_client
from transforms.index.documents import to_action
from transforms.index.names import index_for

pytestmark = pytest.mark.integration


def test_index_names_follow_publish_month():
    assert index_for(sample_article(1), "news") == "news-2026.03"
    assert index_for(sample_article(1, published=None), "news") == "news-undated"


def test_bulk_is_idempotent(es_client, es_settings):
    cfg = es_settings.elasticsearch
    actions = [to_action(sample_article(n), cfg.index_prefix) for n in range(5)]
    client = make_client(cfg)
    assert bulk_index(client, actions, cfg) == (5, [])
    assert bulk_index(client, actions, cfg) == (5, [])  # same ids: overwritten, not added
    es_client.indices.refresh(index=cfg.alias)
    assert es_client.count(index=cfg.alias)["count"] == 5
    doc = es_client.get(index=f"{cfg.index_prefix}-2026.03", id=actions[0]["_id"])["_source"]
    assert doc["entities"]["people"] == ["ada lovelace"]
    # the whitespace analyzer indexes exactly the normalised tokens
    tokens = es_client.indices.analyze(
        index=f"{cfg.index_prefix}-2026.03", field="body_normalized", text="u.s. - trained 's ,"
    )["tokens"]
    assert [t["token"] for t in tokens] == ["u.s.", "-", "trained", "'s", ","]


def test_rejected_document_is_dead_lettered_and_replayable(es_client, es_settings, tmp_path):
    cfg = es_settings.elasticsearch
    good = to_action(sample_article(1), cfg.index_prefix)
    bad = to_action(sample_article(2), cfg.index_prefix)
    bad["_source"]["word_count"] = "not a number"
    indexed, failed = bulk_index(make_client(cfg), [good, bad], cfg)
    assert indexed == 1
    ((action, reason, detail),) = failed
    assert action["_id"] == bad["_id"]
    assert reason == "rejected_400"
    assert "word_count" in detail

    # the dead letter holds the action; fix it and replay through the CLI
    action["_source"]["word_count"] = 4
    failure = Failure("index", reason, "u", detail, payload=action)
    path = write_dead_letter_file(str(tmp_path), "index", [dead_letter_line(failure)])
    (record,) = read_dead_letters([str(tmp_path)])  # a folder, as a user replays it
    assert record["payload"]["_id"] == bad["_id"]
    code = cli_main(
        ["replay", str(path), "--es-url", cfg.url, *_prefix_flags(es_settings, tmp_path)]
    )
    assert code == 0
    es_client.indices.refresh(index=cfg.alias)
    assert es_client.count(index=cfg.alias)["count"] == 2


def _prefix_flags(settings, tmp_path):
    profile = tmp_path / "profile.yaml"
    profile.write_text(
        f"elasticsearch: {{index_prefix: {settings.elasticsearch.index_prefix}, "
        f"alias: {settings.elasticsearch.alias}}}\n"
    )
    return ["--config", str(profile)]


def test_elasticsearch_down_is_retried_then_dead_lettered(es_settings):
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    cfg = es_settings.elasticsearch.model_copy(
        update={"url": f"http://127.0.0.1:{port}", "max_retries": 1, "retry_seconds": 3}
    )
    actions = [to_action(sample_article(n), cfg.index_prefix) for n in range(3)]
    indexed, failed = bulk_index(make_client(cfg, retries=0), actions, cfg)
    assert indexed == 0
    assert [reason for _, reason, _ in failed] == ["unavailable"] * 3


def test_a_huge_body_is_bounded_flagged_and_indexed(es_client, es_settings):
    from transforms.normalize import normalize_article, normalize_text

    huge = sample_article(99).replace(body="word " * 900_000)  # a 4.5 MB one-line "article"
    bounded = normalize_article(huge, 200_000)
    assert bounded.body_truncated and len(bounded.body) <= 200_000
    assert bounded.body.endswith("word") and normalize_text(bounded.body_normalized) == (
        bounded.body_normalized
    )
    assert not normalize_article(sample_article(1), 200_000).body_truncated
    action = to_action(bounded, es_settings.elasticsearch.index_prefix)
    settings = es_settings.elasticsearch
    indexed, failed = bulk_index(es_client, [action], settings)
    assert (indexed, failed) == (1, [])
    doc = es_client.get(index=action["_index"], id=action["_id"])["_source"]
    assert doc["body_truncated"] is True and len(doc["body"]) <= 200_000


def test_a_busy_node_is_retried_in_one_layer(es_client, es_settings):
    """429 then 200: the sink's client does not retry by itself and the bulk helper does
    not either, so each try of the batch is one request, and the batch lands whole."""
    from tests.support.busy_node import BusyNode

    actions = [
        to_action(sample_article(n), es_settings.elasticsearch.index_prefix) for n in range(4)
    ]
    with BusyNode(ES_URL, busy_bulks=2) as node:
        cfg = es_settings.elasticsearch.model_copy(update={"url": node.url, "max_retries": 5})
        client = make_client(cfg, retries=0)  # what the sink uses
        assert bulk_index(client, actions, cfg) == (4, [])
        assert node.bulk_requests == 3  # 429, 429, then 200: no request multiplied
    es_client.indices.refresh(index=cfg.alias)
    assert es_client.count(index=cfg.alias)["count"] == 4


def test_a_node_that_stays_busy_costs_bounded_time(es_settings):
    """With 429 forever the batch goes to dead letters after ``retry_seconds``, having
    made one request per try of the backoff schedule (tries at 0, 1 and 3 s of a 4 s
    budget: 3 requests; with the client's own retries it would be twice as many)."""
    import time

    from tests.support.busy_node import BusyNode

    actions = [
        to_action(sample_article(n), es_settings.elasticsearch.index_prefix) for n in range(2)
    ]
    with BusyNode(ES_URL, busy_bulks=10**6) as node:
        cfg = es_settings.elasticsearch.model_copy(update={"url": node.url, "retry_seconds": 4})
        started = time.monotonic()
        indexed, failed = bulk_index(make_client(cfg, retries=0), actions, cfg)
        took = time.monotonic() - started
        assert (indexed, [reason for _, reason, _ in failed]) == (0, ["unavailable"] * 2)
        assert node.bulk_requests == 3 and 2.5 < took < 10, (node.bulk_requests, took)
