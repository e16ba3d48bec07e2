"""``wirestream sources``: each source's health, read back from the stats index.

The stream writes one ``source_day`` document per (source, day, run)
(``transforms.source_health``); this sums a source's days, takes its flags from its
latest document, and prints a table, flagged sources first.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from transforms.index.client import SearchClient, scan


@dataclass
class SourceRow:
    """One source over the days read."""

    source: str
    documents: int = 0
    failures: int = 0
    walls: int = 0
    no_author: int = 0
    no_date: int = 0
    short_body: int = 0
    median_words: int | None = None  # of its latest day
    reasons: Counter = field(default_factory=Counter)
    flags: list[str] = field(default_factory=list)  # of its latest document
    updated_at: str = ""

    def share(self, count: int) -> str:
        return f"{count / self.documents:.0%}" if self.documents else "-"


def read_source_days(client: SearchClient, index: str, days: int) -> list[dict[str, Any]]:
    """Return the ``source_day`` documents of the last ``days`` days."""
    query = {
        "bool": {
            "filter": [
                {"term": {"stage": "source_day"}},
                {"range": {"@timestamp": {"gte": f"now/d-{days - 1}d"}}},
            ]
        }
    }
    hits = scan(client, index=index, query={"query": query}, ignore_unavailable=True)
    return [hit["_source"] for hit in hits]


def source_rows(documents: list[dict[str, Any]]) -> list[SourceRow]:
    """Return one row per source, flagged first, then by documents."""
    rows: dict[str, SourceRow] = {}
    for doc in sorted(documents, key=lambda d: d.get("updated_at") or ""):
        row = rows.setdefault(doc["source"], SourceRow(doc["source"]))
        for name in ("documents", "failures", "walls", "no_author", "no_date", "short_body"):
            setattr(row, name, getattr(row, name) + int(doc.get(name) or 0))
        row.reasons.update(doc.get("reasons") or {})
        row.flags = list(doc.get("flag_details") or [])  # the latest document's
        row.median_words = doc.get("median_words") or row.median_words
        row.updated_at = doc.get("updated_at") or row.updated_at
    return sorted(rows.values(), key=lambda r: (not r.flags, -r.documents, r.source))


def format_table(rows: list[SourceRow]) -> str:
    """Return ``rows`` as a text table, with each flag and top failure reasons below."""
    header = (
        f"{'source':32} {'docs':>6} {'failed':>6} {'walls':>5} {'no author':>9} "
        f"{'no date':>7} {'short':>6} {'words':>6}  health"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        words = str(row.median_words) if row.median_words else "-"
        lines.append(
            f"{row.source[:32]:32} {row.documents:6} {row.failures:6} {row.walls:5} "
            f"{row.share(row.no_author):>9} {row.share(row.no_date):>7} "
            f"{row.share(row.short_body):>6} {words:>6}  {'FLAGGED' if row.flags else 'ok'}"
        )
        lines.extend(f"    flag {flag}" for flag in row.flags)
        if row.reasons:
            top = ", ".join(f"{reason} {n}" for reason, n in row.reasons.most_common(4))
            lines.append(f"    failures: {top}")
    return "\n".join(lines)


def print_sources(client: SearchClient, index: str, days: int, flagged_only: bool) -> int:
    """Print the table; return how many sources are flagged."""
    rows = source_rows(read_source_days(client, index, days))
    if flagged_only:
        rows = [r for r in rows if r.flags]
    if not rows:
        print(f"no source health in '{index}' for the last {days} days (a stream writes it)")
        return 0
    print(format_table(rows))
    flagged = sum(1 for r in rows if r.flags)
    print(f"\n{len(rows)} sources, {flagged} flagged, over the last {days} days ('{index}')")
    return flagged
