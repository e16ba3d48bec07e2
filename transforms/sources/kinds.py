"""The kinds of files a backfill reads, one record each: what a kind's files are called,
how they are parsed, what they yield and how their inputs are counted."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from transforms.sources import saved_feeds, text, url_lists
from transforms.sources.counting import count_feed_entries, count_listed_urls, count_one


@dataclass(frozen=True)
class FileKind:
    """A kind of archived file: ``yields`` names the outputs its parser fills (``items``
    to fetch, ``pages`` to extract, ``articles`` ready to index)."""

    name: str
    suffixes: tuple[str, ...]
    parse: Callable
    yields: tuple[str, ...]
    count: Callable[[str], int]  # the inputs of one file (the progress bar's total)


FILE_KINDS = {
    kind.name: kind
    for kind in (
        FileKind(
            "feeds",
            saved_feeds.SUFFIXES,
            saved_feeds.parse_saved_feed,
            ("items", "pages"),
            count_feed_entries,
        ),
        FileKind(
            "urls", url_lists.SUFFIXES, url_lists.parse_url_list, ("items",), count_listed_urls
        ),
        FileKind("text", text.SUFFIXES, text.parse_text_file, ("pages", "articles"), count_one),
    )
}
#: Every kind a backfill argument may name (``KIND:PATH``): WARC and sitemaps have
#: readers of their own (``warc.py``, ``sources/sitemaps.py``).
KINDS = ("warc", *FILE_KINDS, "sitemap")
