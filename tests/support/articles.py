"""Articles as the sink receives them, for tests of writing and replaying."""

from __future__ import annotations

from datetime import datetime, timezone

from transforms.article import Article


def sample_article(n: int, published=datetime(2026, 3, 4, 12, tzinfo=timezone.utc)) -> Article:
    return Article(
        url=f"http://news.example/a/{n}.html?utm_source=x",
        canonical_url=f"http://news.example/a/{n}.html",
        source="news.example",
        feed_url="http://news.example/feed.xml",
        title=f"Story {n}",
        body=f"Body of story {n}.",
        body_normalized=f"body of story {n} .",
        fetched_at=datetime(2026, 3, 5, tzinfo=timezone.utc),
        published_at=published,
        entities={"people": ["ada lovelace"]},
        word_count=4,
    )
