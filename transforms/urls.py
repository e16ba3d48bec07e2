"""Canonical article URLs: the identity of an article across feeds and re-runs."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from w3lib.url import canonicalize_url as w3lib_canonicalize

# Query parameters that track a click, not identify a page.
TRACKING_PARAMS = frozenset(
    {"fbclid", "gclid", "dclid", "msclkid", "mc_cid", "mc_eid", "igshid", "ocid", "cmpid", "smid"}
)
TRACKING_PREFIXES = ("utm_",)


def _is_tracking(name: str) -> bool:
    lowered = name.lower()
    return lowered in TRACKING_PARAMS or lowered.startswith(TRACKING_PREFIXES)


def host_port(url: str) -> str:
    """Return ``url``'s lowercased host plus any explicit port (``[::1]:8080`` for IPv6).

    Never raises: a malformed port is kept as written (the fetch fails and says so), and
    a string that is not a URL at all gives ``""``."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:  # e.g. an unbalanced "[" in the host
        return ""
    return _host_port(parts)


def _host_port(parts) -> str:
    host = (parts.hostname or "").lower()
    if ":" in host:  # an IPv6 literal keeps its brackets, or the port would be ambiguous
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:  # out of range or not a number
        port = parts.netloc.rpartition(":")[2]
    return host if port in (None, "") else f"{host}:{port}"


def canonicalize_url(url: str) -> str:
    """Return ``url`` without fragment, tracking parameters and password, in w3lib's
    canonical form: scheme and host lowercased, query arguments sorted, percent-encoding
    normalised (``café`` = ``caf%C3%A9``), dot segments resolved (``/a/../b`` = ``/b``).

    Never raises: what cannot be parsed is returned as near that form as it allows."""
    try:
        parts = urlsplit(url.strip())
        query = urlencode(
            [
                (k, v)
                for k, v in parse_qsl(parts.query, keep_blank_values=True)
                if not _is_tracking(k)
            ]
        )
        netloc = _host_port(parts)
        if parts.username:
            netloc = f"{parts.username}@{netloc}"
        stripped = urlunsplit((parts.scheme.lower(), netloc, parts.path or "/", query, ""))
    except ValueError:
        return url.strip()
    try:
        return w3lib_canonicalize(stripped)
    except ValueError:  # e.g. a port out of range: the fetch refuses it with its reason
        return stripped


def source_domain(url: str) -> str:
    """Return the publisher's domain (host without ``www.``), plus a non-default port."""
    return host_port(url).removeprefix("www.")
