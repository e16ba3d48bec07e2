"""Real news about real events for the stories tests: ECB+ documents (``../shared/bench/
stories-dev``), as rows for ``wirestream stories``, as pages to serve or archive."""

from __future__ import annotations

import html
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

START = datetime(2026, 3, 2, 8, tzinfo=timezone.utc)


def ecbplus(shared: Path) -> list[dict]:
    """Return the ECB+ documents in file order."""
    path = shared / "bench" / "stories-dev" / "ecbplus" / "docs.jsonl"
    return [json.loads(line) for line in path.open(encoding="utf-8")]


def event(shared: Path, cluster_id: str, count: int) -> list[dict]:
    """Return the first ``count`` long documents (300+ tokens) reporting one event."""
    docs = [d for d in ecbplus(shared) if d["cluster_id"] == cluster_id and d["n_tokens"] >= 300]
    assert len(docs) >= count, f"{cluster_id} has {len(docs)} long documents"
    return docs[:count]


def row(doc: dict, hours: float, source: str) -> dict:
    """Return a ``wirestream stories`` row for ``doc`` published ``hours`` after START."""
    lines = doc["text"].split("\n")
    return {
        "id": doc["doc_id"],
        "title": lines[0],
        "body": "\n".join(lines[1:]),
        "published_at": (START + timedelta(hours=hours)).isoformat(),
        "source": source,
        "url": f"https://{source}/{doc['doc_id']}",
    }


def page(doc: dict, footer: str = "") -> bytes:
    """Return an article page for ``doc``: its first sentence as headline, the rest as
    paragraphs (plus ``footer``, as a republisher adds)."""
    lines = doc["text"].split("\n")
    title = html.escape(lines[0])
    paragraphs = "".join(f"<p>{html.escape(line)}</p>\n" for line in [*lines[1:], footer] if line)
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{title}</title>"
        f"</head><body><header><a href='/'>Home</a></header><article><h1>{title}</h1>\n"
        f"{paragraphs}</article><footer>About us</footer></body></html>"
    ).encode()
