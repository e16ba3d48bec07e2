"""Stories end to end on Prism into the real Elasticsearch: three outlets on 127.0.0.1
publish reports of one real event (ECB+), a verbatim and an edited copy of one of them,
and other news; the stream finds the copies and the story across outlets, fills the
stories index, and a restart continues the story under the same id. A WARC backfill of
the same pages gives the same grouping, and a re-run changes nothing."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest

from tests.support.stories import (
    articles_by_url,
    assert_grouped,
    page,
    publish_news,
    run_ok,
    stories_by_id,
    stories_profile,
)

pytestmark = [pytest.mark.integration, pytest.mark.runner]


@pytest.fixture
def news(shared_dir, tmp_path):
    """Three outlets: four reports of one event, two copies of the first, other news."""
    outlets, urls, late, start = publish_news(shared_dir, tmp_path)
    yield outlets, urls, late, start
    for outlet in outlets:
        outlet.server.stop()


def test_stream_groups_copies_and_a_story_across_outlets_and_a_restart_continues_it(
    es_client, es_settings, news, tmp_path
):
    outlets, urls, late_report, start = news
    profile = stories_profile(tmp_path, es_settings, outlets)
    prefix = es_settings.elasticsearch.index_prefix

    run_ok("run", "--config", str(profile), "--duration", "45")

    docs = articles_by_url(es_client, es_settings.elasticsearch.alias)
    assert len(docs) == 21
    story = assert_grouped(docs, urls, in_order=False)
    stories = stories_by_id(es_client, prefix)
    assert stories[story]["size"] == 6 and stories[story]["copies"] == 2
    assert stories[story]["source_count"] == 3
    first = next(d for d in docs.values() if d["_id"] == story)  # the story's first article
    assert stories[story]["title"] == first["title"]
    assert set(stories) == {d["story_id"] for d in docs.values()}  # one document per story

    # a restart: its state is gone, the story is read back; a new report joins it
    late = outlets[0].publish("report-late", page(late_report), start + timedelta(hours=7))
    out = run_ok("run", "--config", str(profile), "--duration", "40")

    again = articles_by_url(es_client, es_settings.elasticsearch.alias)
    assert len(again) == 22
    assert again[late]["story_id"] == story, out
    assert {u: d["story_id"] for u, d in again.items() if u != late} == {
        u: d["story_id"] for u, d in docs.items()
    }
    grown = stories_by_id(es_client, prefix)
    assert grown[story]["size"] == 7 and grown[story]["source_count"] == 3
    assert set(grown) == set(stories)


def test_backfill_groups_the_same_way_and_a_rerun_changes_nothing(
    es_client, es_settings, news, tmp_path
):
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    outlets, urls, _late, _start = news
    warc = tmp_path / "news.warc.gz"
    with warc.open("wb") as handle:
        writer = WARCWriter(handle, gzip=True)
        for outlet in outlets:
            for url, _title, when, body in outlet.items:
                http = StatusAndHeaders(
                    "200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1"
                )
                record = writer.create_warc_record(
                    url,
                    "response",
                    payload=io.BytesIO(body),
                    http_headers=http,
                    warc_headers_dict={"WARC-Date": when.strftime("%Y-%m-%dT%H:%M:%SZ")},
                )
                writer.write_record(record)
    profile = stories_profile(tmp_path, es_settings, outlets)
    args = ("backfill", str(warc), "--config", str(profile), "--no-progress")

    out = run_ok(*args)

    assert "stories: 21 articles in" in out, out
    docs = articles_by_url(es_client, es_settings.elasticsearch.alias)
    assert len(docs) == 21
    story = assert_grouped(docs, urls)
    stories = stories_by_id(es_client, es_settings.elasticsearch.index_prefix)
    assert stories[story]["size"] == 6 and stories[story]["source_count"] == 3
    assert set(stories) == {d["story_id"] for d in docs.values()}

    rerun = run_ok(*args)

    assert "0 articles updated" in rerun, rerun
    assert {
        u: d["story_id"]
        for u, d in articles_by_url(es_client, es_settings.elasticsearch.alias).items()
    } == {u: d["story_id"] for u, d in docs.items()}
    assert set(stories_by_id(es_client, es_settings.elasticsearch.index_prefix)) == set(stories)
