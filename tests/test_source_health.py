"""Source health: a source's day counts and drift flags (``transforms/source_health.py``)
and the table ``wirestream sources`` prints from them (``pipeline/sources_report.py``)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone

import pytest

from pipeline.config import REPO_ROOT
from pipeline.sources_report import format_table, source_rows
from tests.support.cli import wirestream
from tests.support.publishers import Publisher, layouts
from tests.support.sample_stream import feeds_profile
from transforms.source_health import (
    MIN_BASELINE,
    SourceState,
    median_words,
    source_day_action,
    tally,
)
from transforms.urls import source_domain

NOW = datetime(2026, 11, 29, 12, tzinfo=timezone.utc).timestamp()


def _page(author=True, date=True, words=600, extractor="trafilatura", language="en"):
    summary = {
        "author": author,
        "date": date,
        "title": True,
        "words": words,
        "extractor": extractor,
        "language": language,
    }
    return ("article", summary)


def _feed(state, events, start=0):
    raised_at = {}
    for n, event in enumerate(events, start):
        raised, _ = tally(state, event, NOW + n)
        for signal in raised:
            raised_at.setdefault(signal, n)
    return raised_at


def test_a_redesign_that_drops_authors_and_halves_bodies_is_flagged_within_a_few_pages():
    state = SourceState()
    assert _feed(state, [_page(author=n % 10 != 0) for n in range(60)]) == {}  # 90% authors
    raised = _feed(state, [_page(author=False, words=200) for _ in range(20)], start=60)
    assert set(raised) == {"authors", "words"}
    assert max(raised.values()) - 60 < 14, raised  # within 14 pages of the change
    assert "90% ->" in state.flags["authors"]["what"]
    assert state.flags["words"]["what"].startswith("median words ~")
    # the flagged baselines are held: weeks of the broken layout stay flagged
    _feed(state, [_page(author=False, words=200) for _ in range(500)], start=80)
    assert set(state.flags) == {"authors", "words"}
    # and a recovery clears them
    _feed(state, [_page() for _ in range(20)], start=580)
    assert state.flags == {}


def test_pages_without_a_body_and_walls_are_flagged():
    state = SourceState()
    _feed(state, [_page() for _ in range(40)])
    raised = _feed(state, [("failure", "extract:too_little_text")] * 12, start=40)
    assert "bodies" in raised and "walls" not in raised
    other = SourceState()
    _feed(other, [_page() for _ in range(40)])
    raised = _feed(other, [("failure", "fetch:bot_wall")] * 12, start=40)
    assert {"walls", "bodies"} <= set(raised)
    # pages gone say nothing of the layout; pages not asked for, as their host walls,
    # say it still walls (one wall, then a back-off: the source is flagged all the same)
    quiet = SourceState()
    _feed(quiet, [_page() for _ in range(40)])
    assert _feed(quiet, [("failure", "fetch:http_404")] * 20, start=40) == {}
    assert quiet.counts["n"]["failures"] == 20 and "walls" not in quiet.counts["n"]
    walled = SourceState()
    _feed(walled, [_page() for _ in range(40)])
    once = [("failure", "fetch:bot_wall")] + [("failure", "fetch:walled_host")] * 11
    assert set(_feed(walled, once, start=40)) == {"walls"}  # not "bodies": none was read
    assert walled.counts["n"]["walls"] == 1
    new = SourceState()  # a source that walls from its first pages needs no baseline
    assert set(_feed(new, [_page()] * 3 + once)) == {"walls"}


def test_no_flag_before_a_baseline_or_on_a_source_that_never_had_authors():
    state = SourceState()
    early = [_page() for _ in range(MIN_BASELINE)] + [_page(author=False, words=20)] * 9
    assert _feed(state, early) == {}  # the baseline holds only 19 pages
    steady = SourceState()
    assert _feed(steady, [_page(author=False, date=n % 2 == 0) for n in range(300)]) == {}


def test_noise_in_a_healthy_source_raises_no_flag():
    """Bodies of 150-2,000 words, authors on 80% of pages, shuffled: no flag in 2,000."""
    import random

    rng = random.Random(3)
    pages = [
        _page(author=rng.random() < 0.8, words=int(2 ** rng.uniform(7.3, 11))) for _ in range(2000)
    ]
    assert _feed(SourceState(), pages) == {}


def test_a_day_document_counts_the_day_and_names_the_flags():
    state = SourceState()
    _feed(state, [_page(words=300), _page(author=False, words=100), ("failure", "fetch:bot_wall")])
    _feed(
        state, [("failure", "fetch:http_404"), _page(language="de", extractor="newspaper")], start=3
    )
    action = source_day_action("example.com", state, "run1", "news-stats")
    doc = action["_source"]
    assert action["_index"] == "news-stats" and action["_op_type"] == "index"
    assert (doc["documents"], doc["no_author"], doc["short_body"]) == (3, 1, 1)
    assert (doc["walls"], doc["failures"]) == (1, 2)
    assert doc["reasons"] == {"fetch:bot_wall": 1, "fetch:http_404": 1}
    assert doc["languages"] == ["de", "en"] and doc["extractors"] == ["newspaper", "trafilatura"]
    assert doc["stage"] == "source_day" and doc["@timestamp"].startswith("2026-11-29")
    again = source_day_action("example.com", SourceState(json.loads(state.to_json())), "run1", "x")
    assert again["_id"] == action["_id"]  # rewritten in place as the day goes on


def test_the_first_wall_of_a_day_is_written_at_once():
    state = SourceState()
    assert tally(state, _page(), NOW)[1] is False
    assert tally(state, ("failure", "fetch:bot_wall"), NOW)[1] is True
    assert tally(state, ("failure", "fetch:bot_wall"), NOW)[1] is False
    tally(state, _page(), NOW + 86_400)  # a new day
    assert state.counts["n"] == {"documents": 1, "no_author": 0, "no_date": 0, "no_title": 0,
                                 "short_body": 0}  # fmt: skip


def test_median_words_from_the_histogram():
    assert median_words({}) is None
    assert median_words({"9": 10}) == round(2**9.5)
    assert median_words({"6": 3, "9": 2}) == round(2**6.5)


def test_the_table_puts_flagged_sources_first_with_what_changed():
    docs = [
        {"source": "quiet.example", "documents": 40, "no_author": 4, "updated_at": "1"},
        {
            "source": "broken.example",
            "documents": 10,
            "no_author": 10,
            "failures": 3,
            "walls": 2,
            "reasons": {"fetch:bot_wall": 2, "fetch:http_404": 1},
            "flag_details": ["authors: share with authors 90% -> 5% since 2026-12-07T10:00:00"],
            "updated_at": "2",
        },
    ]
    rows = source_rows(docs)
    assert [r.source for r in rows] == ["broken.example", "quiet.example"]
    table = format_table(rows)
    assert "FLAGGED" in table and "share with authors 90% -> 5%" in table
    assert "fetch:bot_wall 2" in table and "100%" in table and "10%" in table


@pytest.mark.integration
@pytest.mark.runner
def test_a_publisher_redesign_mid_stream_is_flagged_naming_the_fields(
    es_client, es_settings, web, tmp_path
):
    """35 pages of one layout, then the publisher drops its bylines and moves most of the
    body where extractors drop it: the source is flagged for authors and words, in the
    stats index, the log and `wirestream sources`."""
    before, after = layouts()
    harbour = Publisher(web, "harbour")
    for _ in range(35):
        harbour.publish(before)
    changed = {}

    def redesign() -> None:
        time.sleep(14)
        changed["at"] = datetime.now(timezone.utc)
        for _ in range(20):
            harbour.publish(after)

    es = es_settings.elasticsearch
    profile = feeds_profile(
        tmp_path,
        es_settings,
        {"harbour": harbour.feed_url},
        2,
        fetch={"host_min_delay": 0.05},
        stats={"window_seconds": 5},
    )
    threading.Thread(target=redesign, daemon=True).start()
    proc = wirestream("run", "--config", str(profile), "--duration", "40")
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out[-5000:]
    source = source_domain(web.url("/"))
    assert f"source {source} drifted" in out, out[-3000:]

    stats = f"{es.index_prefix}-stats"
    es_client.indices.refresh(index=stats)
    hits = es_client.search(index=stats, query={"term": {"stage": "source_day"}}, size=10)["hits"][
        "hits"
    ]
    (doc,) = [h["_source"] for h in hits]
    assert doc["source"] == source and doc["documents"] >= 50
    assert set(doc["flags"]) >= {"authors", "words"}, doc
    for detail in doc["flag_details"]:
        since = datetime.fromisoformat(detail.rsplit(" since ", 1)[1])
        assert since >= changed["at"].replace(microsecond=0), detail
    assert doc["no_author"] >= 15 and doc["median_words"] > 150

    table = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "sources", "--config", str(profile)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert table.returncode == 0, table.stderr
    assert "FLAGGED" in table.stdout and "pages with authors" in table.stdout, table.stdout
    assert "median words" in table.stdout and source in table.stdout
