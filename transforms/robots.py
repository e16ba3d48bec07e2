"""robots.txt, fetched once per host and cached, read as RFC 9309 says (by protego,
Scrapy's parser: the longest matching rule wins, ``*`` and ``$`` wildcards; the
standard library's parser takes the first matching line and knows no wildcards).

A 2xx answer is parsed; any 4xx means no rules (everything allowed); a 5xx means the
site is unreachable, so everything is disallowed until the short retry time passes.
A failed download (timeout, refused, private address) is raised to the caller, so the
page fails with its real reason. ``Crawl-delay`` is handed to the politeness gate.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from protego import Protego

from transforms.politeness import HostGate, host_key

UNREACHABLE_RETRY = 300.0  # seconds before a 5xx robots.txt is asked for again
MAX_CRAWL_DELAY = 30.0  # a larger Crawl-delay would stall the pipeline on one host

# (robots.txt URL) -> (HTTP status, body); raises FetchError when there is no answer.
RobotsFetcher = Callable[[str], tuple[int, bytes]]


@dataclass
class _Rules:
    parser: Protego | None  # None: no rules
    allow_all: bool
    expires: float


def robots_url(url: str) -> str:
    """Return the robots.txt address for ``url``'s scheme and host."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/robots.txt"


def parse_robots(text: str) -> Protego:
    """Return a parser loaded with the rules in ``text``."""
    return Protego.parse(text)


class RobotsCache:
    """Answer "may we fetch this URL?" with one robots.txt download per host per TTL."""

    def __init__(
        self,
        fetch: RobotsFetcher,
        user_agent: str,
        ttl: float,
        gate: HostGate | None = None,
    ) -> None:
        self.fetch = fetch
        self.user_agent = user_agent
        self.ttl = ttl
        self.gate = gate
        self._rules: dict[str, _Rules] = {}
        self._lock = threading.Lock()

    def allowed(self, url: str) -> bool:
        """Return whether robots.txt lets our user agent fetch ``url``."""
        rules = self._rules_for(url)
        if rules.parser is None:
            return rules.allow_all
        return rules.parser.can_fetch(url, self.user_agent)

    def _rules_for(self, url: str) -> _Rules:
        key = robots_url(url)
        with self._lock:
            cached = self._rules.get(key)
        if cached and cached.expires > time.monotonic():
            return cached
        rules = self._download(key, host_key(url))
        with self._lock:
            self._rules[key] = rules
        return rules

    def _download(self, address: str, host: str) -> _Rules:
        status, body = self.fetch(address)  # FetchError propagates: not cached
        now = time.monotonic()
        if status >= 500:
            return _Rules(None, allow_all=False, expires=now + min(self.ttl, UNREACHABLE_RETRY))
        if not 200 <= status < 300:
            return _Rules(None, allow_all=True, expires=now + self.ttl)
        parser = parse_robots(body.decode("utf-8", errors="replace"))
        delay = parser.crawl_delay(self.user_agent)
        if delay and self.gate is not None:
            self.gate.set_delay(host, min(float(delay), MAX_CRAWL_DELAY))
        return _Rules(parser, allow_all=True, expires=now + self.ttl)
