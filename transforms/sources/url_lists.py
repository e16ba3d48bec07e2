"""Lists of article URLs to fetch: ``.txt`` (one a line, ``#`` comments), ``.csv`` (a
``url`` column, else the first column holding one), ``.jsonl`` (``{"url": ...}`` plus
optional title, published_at, language, publisher, tags)."""

from __future__ import annotations

import csv
import io
import json

from transforms.article import FeedItem
from transforms.dead_letters import Failure
from transforms.sources.files import FileInput
from transforms.sources.metadata import validate_meta
from transforms.urls import canonicalize_url

SUFFIXES = (".txt", ".csv", ".jsonl", ".ndjson", ".txt.gz", ".csv.gz", ".jsonl.gz")


def list_rows(file: FileInput):
    """Yield (line number, dict with at least ``url``) or (line number, error message)."""
    text = file.data.decode("utf-8-sig", errors="replace")
    lower = file.path.lower().removesuffix(".gz")
    if lower.endswith((".jsonl", ".ndjson")):
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                yield number, f"not JSON: {exc}"
                continue
            yield number, row if isinstance(row, dict) else {"url": row}
    elif lower.endswith(".csv"):
        reader = csv.reader(io.StringIO(text))
        header = [h.strip().lower() for h in next(reader, [])]
        column = header.index("url") if "url" in header else None
        if column is None:  # no header: the header row is data too
            reader = csv.reader(io.StringIO(text))
        for number, row in enumerate(reader, 1 if column is None else 2):
            cells = [c.strip() for c in row]
            url = (
                cells[column]
                if column is not None and column < len(cells)
                else next((c for c in cells if c.startswith(("http://", "https://"))), "")
            )
            if any(cells):
                yield number, {"url": url}
    else:
        for number, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if line and not line.startswith("#"):
                yield number, {"url": line}


def parse_url_list(file: FileInput):
    """Yield a FeedItem per listed URL, or a Failure naming the bad line."""
    for number, row in list_rows(file):
        where = f"{file.path}:{number}"
        if isinstance(row, str):
            yield Failure("read", "bad_line", where, row)
            continue
        try:
            meta = validate_meta(row)
        except ValueError as exc:
            yield Failure("read", "bad_metadata", str(row.get("url") or where), f"{where}: {exc}")
            continue
        url = meta.url or ""
        if not url.startswith(("http://", "https://")):
            yield Failure("read", "bad_url", url or where, f"{where}: not an http(s) URL")
            continue
        yield FeedItem(
            url=canonicalize_url(url),
            feed_url=file.path,
            title=meta.title,
            published_at=meta.published,
            language=meta.language,
            tags=list(meta.tags),
            publisher=meta.publisher,
            authors=list(meta.authors),
        )
