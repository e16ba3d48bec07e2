"""Archive readers as plain functions: WARC (built here and real ones), text folders,
URL lists, saved feeds, and the backfill filters."""

from __future__ import annotations

import json
import os
import re
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest

from pipeline.backfill import classify_source
from tests.support.warcs import PAGES, build_warc, page_bytes, page_url
from transforms.article import Article, FeedItem, Page
from transforms.dead_letters import Failure
from transforms.extract import extract_article
from transforms.sources.files import FileInput
from transforms.sources.saved_feeds import parse_saved_feed
from transforms.sources.selection import preferred, rejection
from transforms.sources.text import parse_text_file
from transforms.sources.url_lists import parse_url_list
from transforms.sources.warc import GZIP_MAGIC, plan_blocks, read_block

NOW = datetime(2026, 3, 20, tzinfo=timezone.utc)


def read_warc(path: Path, block_bytes: int = 1 << 26) -> list:
    metadata = SimpleNamespace(path=str(path), size_in_bytes=os.path.getsize(path))
    results = []
    with open(path, "rb") as stream:
        gzipped = stream.read(3) == GZIP_MAGIC
        for block in plan_blocks(metadata, block_bytes):
            results.extend(read_block(stream, block, gzipped))
    return results


def kinds(results: list) -> dict[str, int]:
    counts: dict[str, int] = {}
    for result in results:
        key = (
            "pages"
            if isinstance(result, Page)
            else f"failed:{result.reason}"
            if isinstance(result, Failure)
            else result
        )
        counts[key] = counts.get(key, 0) + 1
    return counts


@pytest.mark.parametrize("gzipped", [True, False])
def test_warc_reads_html_responses_and_counts_the_rest(tmp_path, gzipped):
    path = tmp_path / ("sample.warc.gz" if gzipped else "sample.warc")
    expected = build_warc(path, gzipped)
    results = read_warc(path)
    counts = kinds(results)
    assert counts.pop("pages") == expected["pages"]
    assert counts.pop("not_html") == 1 and counts.pop("redirect") == 1
    assert sum(counts.values()) == 1 and next(iter(counts)).startswith("failed:")  # the cut one
    pages = [r for r in results if isinstance(r, Page)]
    assert pages[0].url == page_url(PAGES[0])
    assert pages[0].fetched_at == datetime(2026, 3, 18, 10, tzinfo=timezone.utc)
    (market,) = [p for p in pages if "market-hall" in p.url]
    assert "£" in market.html  # wrong charset label: decoded by detection
    article = extract_article(market.html, market.final_url, market.fetched_at, market.item)
    assert "café" in article.body.lower()


@pytest.mark.parametrize("gzipped", [True, False])
def test_warc_split_in_small_blocks_reads_each_record_once(tmp_path, gzipped):
    path = tmp_path / ("sample.warc.gz" if gzipped else "sample.warc")
    build_warc(path, gzipped)
    whole = read_warc(path)
    split = read_warc(path, block_bytes=4096)
    assert os.path.getsize(path) > 4 * 4096  # really several blocks
    assert [getattr(r, "url", r) for r in split] == [getattr(r, "url", r) for r in whole]


REAL_WARCS = {
    "resiliparse/warcfile.warc.gz": {"pages": 16},
    "resiliparse/clipped.warc.gz": {"failed:truncated": 1},
    "warcio/example.warc.gz": {"pages": 1},
    "warcio/example-iana.org-chunked.warc": {"pages": 1},
    "warcio/example-wrong-chunks.warc.gz": {"pages": 1},
    "warcio/example-bad-non-chunked.warc.gz": {"pages": 1},
    "warcio/example-trunc.warc": {"failed:bad_encoding": 1, "failed:bad_record": 1},
    "warcio/example.arc.gz": {"failed:not_warc": 1},
    "anserini-ccnews-headers/ccnews-2020-03-segment1.warc.gz": {"failed:bad_record": 1},
    "anserini-ccnews-headers/commoncrawlnewsen-segment1.warc.gz": {"failed:bad_record": 1},
}


@pytest.mark.parametrize("name", sorted(REAL_WARCS))
def test_real_warcs_are_read_or_counted_as_failed(shared_dir, name):
    path = shared_dir / "fixtures" / "warc" / name
    assert kinds(read_warc(path)) == REAL_WARCS[name]
    assert kinds(read_warc(path, block_bytes=4096)) == REAL_WARCS[name]


def test_real_warc_pages_decode_and_keep_the_target_uri(shared_dir):
    path = shared_dir / "fixtures" / "warc" / "resiliparse" / "warcfile.warc.gz"
    pages = [r for r in read_warc(path) if isinstance(r, Page)]
    spb = next(p for p in pages if "01spb.ru" in p.url)  # windows-1251
    assert spb.url == "http://01spb.ru/company/"
    assert re.search("[а-я]{4}", spb.html)
    assert spb.fetched_at == datetime(2020, 8, 8, 18, 31, 12, tzinfo=timezone.utc)


def _file(path: Path, root: Path) -> FileInput:
    return FileInput(str(path), str(root), path.read_bytes(), NOW)


def test_text_folder_seeds_are_articles_with_stable_ids(shared_dir):
    seeds = shared_dir / "seeds"
    articles = [a for p in sorted(seeds.glob("*.txt")) for a in parse_text_file(_file(p, seeds))]
    assert len(articles) == 3 and all(isinstance(a, Article) for a in articles)
    first = articles[0]
    assert first.canonical_url == "archive://seeds/000_5bff6559065dd49d.txt"
    assert first.title.startswith("members of the iraqi army")
    assert first.source == "seeds" and first.published_at is None
    again = next(iter(parse_text_file(_file(seeds / "000_5bff6559065dd49d.txt", seeds))))
    assert again.doc_id == first.doc_id


def test_text_folder_sidecar_file_name_html_and_errors(tmp_path):
    (tmp_path / "2026-03-09-market.txt").write_text("Market hall reopens\n\nThe hall is open.")
    (tmp_path / "story.txt").write_text("Body text.")
    (tmp_path / "story.json").write_text(
        json.dumps({"url": "https://news.example/story?utm_source=x", "title": "A story",
                    "published_at": "2026-03-10T08:00:00Z", "language": "EN",
                    "authors": ["Ann Lee"]})
    )  # fmt: skip
    (tmp_path / "page.html").write_bytes(page_bytes(PAGES[0]))
    (tmp_path / "empty.txt").write_text("  \n")
    (tmp_path / "bad.txt").write_text("x")
    (tmp_path / "bad.json").write_text("{not json")
    out = {p.name: list(parse_text_file(_file(p, tmp_path))) for p in tmp_path.glob("*.*")}
    (dated,) = out["2026-03-09-market.txt"]
    assert dated.title == "Market hall reopens"
    assert dated.published_at == datetime(2026, 3, 9, tzinfo=timezone.utc)
    (story,) = out["story.txt"]
    assert story.canonical_url == "https://news.example/story" and story.title == "A story"
    assert story.language == "en" and story.authors == ["Ann Lee"]
    assert story.source == "news.example"
    (page,) = out["page.html"]
    assert isinstance(page, Page) and page.url.startswith("archive://")
    assert [f.reason for f in out["empty.txt"]] == ["empty_file"]
    assert [f.reason for f in out["bad.txt"]] == ["bad_metadata"]


def test_sidecars_are_validated_not_misread(tmp_path):
    """A string of tags is one tag, an RFC 2822 date is a date, a wrong type is an error
    naming the sidecar and the key (the document is dead-lettered, not half-read)."""
    (tmp_path / "a.txt").write_text("Title\n\nBody.")
    (tmp_path / "a.json").write_text(
        json.dumps({"tags": "politics", "authors": "Ann Lee", "published_at":
                    "Tue, 10 Mar 2026 08:00:00 +0100", "exported_by": "other-tool"})
    )  # fmt: skip
    (tmp_path / "b.txt").write_text("Title\n\nBody.")
    (tmp_path / "b.json").write_text(json.dumps({"tags": ["ok", 7], "published_at": "soon"}))
    (article,) = parse_text_file(_file(tmp_path / "a.txt", tmp_path))
    assert article.tags == ["politics"] and article.authors == ["Ann Lee"]
    assert article.published_at == datetime(2026, 3, 10, 7, tzinfo=timezone.utc)
    (failure,) = parse_text_file(_file(tmp_path / "b.txt", tmp_path))
    assert failure.reason == "bad_metadata"
    assert str(tmp_path / "b.json") in failure.detail
    assert "published_at: not a date" in failure.detail and "tags.1:" in failure.detail


def test_url_lists_txt_csv_jsonl(tmp_path):
    (tmp_path / "a.txt").write_text("# comment\nhttps://a.example/1?utm_source=x\n\nftp://no\n")
    (tmp_path / "b.csv").write_text("title,url\nOne,https://b.example/1\nTwo,\n")
    (tmp_path / "c.jsonl").write_text(
        '{"url": "https://c.example/1", "title": "C", "published_at": "2026-03-01"}\n{oops\n'
        '{"url": "https://c.example/2", "published_at": "Sun, 01 Mar 2026 12:00:00 GMT"}\n'
        '{"url": "https://c.example/3", "tags": {"a": 1}}\n'
    )
    out = {
        p.name: [
            r.url if isinstance(r, FeedItem) else r for r in parse_url_list(_file(p, tmp_path))
        ]
        for p in tmp_path.iterdir()
    }
    for name, domain in (("a.txt", "a"), ("b.csv", "b")):
        url, bad = out[name]
        assert url == f"https://{domain}.example/1" and bad.reason == "bad_url"
    item = next(iter(parse_url_list(_file(tmp_path / "c.jsonl", tmp_path))))
    assert item.title == "C"
    assert item.published_at == datetime(2026, 3, 1, tzinfo=timezone.utc)
    url, bad, rfc2822, wrong = out["c.jsonl"]
    assert bad.reason == "bad_line" and bad.url.endswith("c.jsonl:2")
    assert rfc2822 == "https://c.example/2"
    assert wrong.reason == "bad_metadata" and wrong.url == "https://c.example/3"
    assert wrong.detail.startswith(f"{tmp_path / 'c.jsonl'}:4: tags:")
    items = [r for r in parse_url_list(_file(tmp_path / "c.jsonl", tmp_path)) if r.url == rfc2822]
    assert items[0].published_at == datetime(2026, 3, 1, 12, tzinfo=timezone.utc)


def test_saved_feeds_use_full_content_else_fetch(shared_dir, tmp_path):
    feeds = shared_dir / "fixtures" / "feeds"
    techcrunch = list(parse_saved_feed(_file(feeds / "feedjira" / "TechCrunch.xml", feeds)))
    assert len(techcrunch) == 20 and all(isinstance(r, Page) for r in techcrunch)
    article = extract_article(techcrunch[0].html, techcrunch[0].url, item=techcrunch[0].item)
    assert len(article.body) > 500 and article.published_at is not None
    guardian = list(parse_saved_feed(_file(feeds / "rss-parser" / "input" / "guardian.rss", feeds)))
    assert len(guardian) == 55 and all(isinstance(r, FeedItem) for r in guardian)
    (tmp_path / "junk.xml").write_text("<html><body>not a feed</body></html>")
    (failure,) = parse_saved_feed(_file(tmp_path / "junk.xml", tmp_path))
    assert failure.reason == "bad_feed"


def _article(**changes) -> Article:
    base = Article(
        url="https://news.example/a",
        canonical_url="https://news.example/a",
        source="news.example",
        feed_url=None,
        title="t",
        body="b",
        fetched_at=NOW,
        published_at=datetime(2026, 3, 10, tzinfo=timezone.utc),
        language="en-gb",
    )
    return base.replace(**changes)


def test_filters_name_their_reason():
    since, until = (
        datetime(2026, 3, 1, tzinfo=timezone.utc),
        datetime(2026, 3, 15, tzinfo=timezone.utc),
    )
    assert rejection(_article(), since, until, ["news.example"], ["en"]) is None
    assert (
        rejection(_article(source="www.sub.news.example"), None, None, ["news.example"], []) is None
    )
    assert rejection(_article(published_at=None), since, None, [], []) == "undated"
    assert rejection(_article(), until, None, [], []) == "before_since"
    assert rejection(_article(), None, since, [], []) == "after_until"
    assert rejection(_article(), None, None, ["other.example"], []) == "other_source"
    assert rejection(_article(language=None), None, None, [], ["en"]) == "other_language"
    assert rejection(_article(language="de"), None, None, [], ["en"]) == "other_language"


def test_duplicates_keep_the_same_copy_whatever_the_order():
    older = _article(
        url="https://news.example/a?x=1", fetched_at=datetime(2026, 1, 1, tzinfo=timezone.utc)
    )
    newer, twin = (
        _article(body="longer body"),
        _article(url="https://news.example/a?y=1", body="longer body"),
    )
    assert preferred([older, newer, twin]) is newer
    assert preferred([twin, newer, older]) is newer


def test_classify_source(tmp_path, shared_dir):
    (tmp_path / "urls.txt").write_text("https://a.example/1\n")
    assert classify_source(str(tmp_path / "urls.txt")).kind == "urls"
    assert classify_source("s3://bucket/cc-news/*.warc.gz").kind == "warc"
    assert classify_source(str(shared_dir / "seeds")).kind == "text"
    assert classify_source(str(shared_dir / "fixtures" / "warc")).kind == "warc"
    assert classify_source(f"text:{tmp_path}").pattern == f"{tmp_path}/**"
    with pytest.raises(ValueError, match="name the kind"):
        classify_source(str(tmp_path / "missing.bin"))


def test_a_stream_started_with_since_skips_older_items_and_keeps_undated_ones():
    """``run --since`` (``stream.since``): on Beam's in-process runner, items published
    before the date are dropped before any fetch; undated ones are taken."""
    from datetime import datetime, timezone

    import apache_beam as beam
    from apache_beam.testing.test_pipeline import TestPipeline
    from apache_beam.testing.util import assert_that, equal_to

    from pipeline.cli import build_parser
    from transforms.article import FeedItem
    from transforms.sources.selection import SkipItemsBefore

    args = build_parser().parse_args(["run", "--config", "x.yaml", "--since", "2026-03-01"])
    since = datetime.fromisoformat(args.since)
    items = [
        FeedItem(
            "https://a.example/old", "f", published_at=datetime(2026, 2, 1, tzinfo=timezone.utc)
        ),
        FeedItem(
            "https://a.example/new", "f", published_at=datetime(2026, 3, 2, tzinfo=timezone.utc)
        ),
        FeedItem("https://a.example/undated", "f"),
    ]
    with TestPipeline() as pipeline:
        kept = pipeline | beam.Create(items) | SkipItemsBefore(since) | beam.Map(lambda i: i.url)
        assert_that(kept, equal_to(["https://a.example/new", "https://a.example/undated"]))
