"""A fixture publisher whose pages can change layout or turn into bot walls mid-run
(for the source-health tests and ``bench/source_health.py``)."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from email.utils import format_datetime
from pathlib import Path

from pipeline.config import REPO_ROOT
from pipeline.services.sample_site import FixtureServer

HTML = {"Content-Type": "text/html; charset=utf-8"}
RSS = {"Content-Type": "application/rss+xml"}
ARTICLE = REPO_ROOT / "deploy/sample-site/harbor-gazette/2026/03/seawall-funding.html"
WALLS = Path(__file__).resolve().parents[1] / "data" / "walls"


def layouts() -> tuple[str, str]:
    """A sample-site article page, before and after a redesign that drops its author
    markup and moves all but two paragraphs into the footer (where extractors drop them)."""
    page = ARTICLE.read_text(encoding="utf-8")
    page = re.sub(r'<link rel="canonical"[^>]*>|<meta property="og:url"[^>]*>', "", page)
    after = re.sub(r'<meta name="author"[^>]*>|<meta property="article:author"[^>]*>', "", page)
    after = re.sub(r'<div class="byline">.*?</div>', "", after, flags=re.S)
    paragraphs = re.findall(r"<p>.*?</p>", after, flags=re.S)
    for moved in paragraphs[2:]:
        after = after.replace(moved, "", 1)
    after = after.replace("</body>", "<footer>" + "".join(paragraphs[2:]) + "</footer></body>")
    return page, after


class Publisher:
    """One feed (``/feed.xml``) on ``server`` listing every page published so far."""

    def __init__(self, server: FixtureServer, desk: str) -> None:
        self.server, self.desk = server, desk
        self.items: list[tuple[str, str]] = []

    @property
    def feed_url(self) -> str:
        return self.server.url("/feed.xml")

    def publish(self, layout: str, status: int = 200, headers: dict | None = None) -> str:
        """Publish a page of ``layout`` (an article gets a sentence of its own, so no two
        are copies); return its URL."""
        n = len(self.items)
        unique = f"<p>Report number {n} from the {self.desk} desk, filed today.</p>"
        page = layout.replace('<p class="standfirst">', unique + '<p class="standfirst">', 1)
        page = page.replace("<title>", f"<title>{n} ", 1)
        url = self.server.add_route(f"/news/{n}.html", page, {**HTML, **(headers or {})}, status)
        self.items.append((url, f"Story {n}"))
        when = format_datetime(datetime.now(timezone.utc))
        entries = "".join(
            f"<item><title>{t}</title><link>{u}</link><guid>{u}</guid><pubDate>{when}</pubDate>"
            "</item>"
            for u, t in reversed(self.items)
        )
        rss = f'<?xml version="1.0"?><rss version="2.0"><channel>{entries}</channel></rss>'
        self.server.add_route("/feed.xml", rss, RSS)
        return url
