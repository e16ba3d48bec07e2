"""Recognise pages that stand between a crawler and the article: bot challenges, access
denials, consent interstitials and paywall stubs.

Such pages come back with 200, 202, 403, 429 or 503 and enough words to look like an
article; indexed, they become "articles" titled "Just a moment..." (fundus #936). Each
rule needs evidence a real article does not carry: a header only a bot manager sends, or
a marker of a challenge, consent or paywall script *on a page with little visible text*
(real articles embed captcha and consent scripts too, beside hundreds of words). The
markers are those of the vendors' own pages (Cloudflare, Akamai, Imperva, DataDome,
PerimeterX, AWS WAF, Sucuri, Google and Yahoo consent, schema.org paywall markup).
No library recognises them (news-please, fundus and trafilatura index them), hence
these rules; the bench (``bench/walls.py``) runs them over every real article we have.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

#: Pages with more visible words than this are articles whatever scripts they embed.
WALL_MAX_WORDS = 150
#: A paywall stub: an extracted body this short on a page that says it is paywalled.
PAYWALL_MAX_WORDS = 120

BOT_WALL = "bot_wall"
ACCESS_DENIED = "access_denied"
CONSENT_WALL = "consent_wall"
PAYWALL = "paywall"


@dataclass(frozen=True)
class Wall:
    """What stands in front of the article, and the evidence for it (for the log line)."""

    kind: str
    evidence: str


# Headers that bot managers send only on a challenge or block.
_HEADER_RULES: tuple[tuple[str, re.Pattern[str], str], ...] = (
    ("cf-mitigated", re.compile(r"challenge", re.I), BOT_WALL),  # Cloudflare
    ("x-amzn-waf-action", re.compile(r"challenge|captcha", re.I), BOT_WALL),  # AWS WAF
)
# DataDome tags every response of a protected site; a block is one of these statuses.
_BLOCK_STATUSES = frozenset({401, 403, 405, 429, 503})

_MARKUP_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    # Cloudflare managed / JS challenge and its block page
    (re.compile(r"challenge-platform|cf-browser-verification|cf_chl_|cf-turnstile"), BOT_WALL),
    (re.compile(r"<title>\s*(just a moment|attention required)", re.I), BOT_WALL),
    (re.compile(r"captcha-delivery\.com", re.I), BOT_WALL),  # DataDome
    (re.compile(r"px-captcha|_pxCaptcha|perimeterx", re.I), BOT_WALL),  # PerimeterX / HUMAN
    (re.compile(r"_Incapsula_Resource|Incapsula incident ID", re.I), BOT_WALL),  # Imperva
    (re.compile(r"Sucuri WebSite Firewall", re.I), BOT_WALL),
    (re.compile(r"awswaf|aws-waf-token", re.I), BOT_WALL),
    (re.compile(r"g-recaptcha|h-captcha|hcaptcha\.com|recaptcha/api\.js", re.I), BOT_WALL),
    (
        re.compile(
            r"<title>[^<]{0,40}(are you a robot|are you human|verify you are human|"
            r"security check|bot verification|request blocked)",
            re.I,
        ),
        BOT_WALL,
    ),
    # Akamai's and most servers' refusals
    (re.compile(r"<title>\s*(access denied|403 forbidden|forbidden)\s*<", re.I), ACCESS_DENIED),
    (re.compile(r"You don't have permission to access", re.I), ACCESS_DENIED),
    # Consent interstitials (a page of their own, not a banner over the article)
    (re.compile(r"consent\.(yahoo|google)\.com|guce\.yahoo\.com", re.I), CONSENT_WALL),
    (
        re.compile(
            r"<title>[^<]{0,40}(before you continue|cookie consent|your privacy choices|"
            r"we value your privacy|privacy settings)",
            re.I,
        ),
        CONSENT_WALL,
    ),
)

_PAYWALL_MARKUP = re.compile(r'"isAccessibleForFree"\s*:\s*"?false"?', re.I)
_PAYWALL_TEXT = re.compile(
    r"subscribe to (continue|read)|to continue reading|(for|only for) subscribers|"
    r"subscribers only|already a subscriber|sign in to (continue|read)|"
    r"this (article|content) is (reserved|exclusive)|abonnieren sie|nur für abonnenten|"
    r"réservé aux abonnés|para seguir leyendo|solo para suscriptores|riservato agli abbonati",
    re.I,
)
_TAGS = re.compile(r"<(script|style|noscript)\b.*?</\1\s*>|<[^>]+>", re.I | re.S)


def visible_words(html: str) -> int:
    """Return a rough count of the words a reader sees in ``html`` (no scripts or tags)."""
    return len(_TAGS.sub(" ", html).split())


def find_wall(
    html: str, url: str = "", status: int = 200, headers: Mapping[str, str] | None = None
) -> Wall | None:
    """Return the wall ``html`` (served at ``url`` with ``status`` and lower-cased
    ``headers``) is, or None for a page that may hold an article."""
    headers = headers or {}
    for name, pattern, kind in _HEADER_RULES:
        value = headers.get(name, "")
        if value and pattern.search(value):
            return Wall(kind, f"header {name}: {value[:60]}")
    if "x-datadome" in headers and status in _BLOCK_STATUSES:
        return Wall(BOT_WALL, f"HTTP {status} with x-datadome")
    host = urlsplit(url).hostname or ""
    if host.startswith("consent."):
        return Wall(CONSENT_WALL, f"served from {host}")
    if visible_words(html) > WALL_MAX_WORDS:  # one pass; the markers are many passes
        return None
    for pattern, kind in _MARKUP_RULES:
        match = pattern.search(html)
        if match:
            return Wall(kind, f"{match.group(0)[:60]!r} on a page of few words")
    return None


def find_paywall(html: str, body_words: int) -> Wall | None:
    """Return a paywall when the extracted body (``body_words`` long) is a stub and the
    page says it is paywalled (schema.org markup or a subscribe prompt)."""
    if body_words > PAYWALL_MAX_WORDS:
        return None
    for pattern in (_PAYWALL_MARKUP, _PAYWALL_TEXT):
        match = pattern.search(html)
        if match:
            return Wall(PAYWALL, f"{match.group(0)[:60]!r} beside {body_words} words of body")
    return None
