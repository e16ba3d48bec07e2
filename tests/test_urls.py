"""Canonical URLs are the identity of an article."""

import pytest

from transforms.urls import canonicalize_url, host_port, source_domain


def test_tracking_parameters_and_fragment_are_dropped():
    url = "HTTPS://WWW.Example.com/a/b.html?id=3&utm_source=rss&utm_medium=feed&fbclid=x#comments"
    assert canonicalize_url(url) == "https://www.example.com/a/b.html?id=3"


def test_meaningful_query_and_port_are_kept():
    assert canonicalize_url("http://127.0.0.1:8080/x?page=2") == "http://127.0.0.1:8080/x?page=2"
    assert canonicalize_url("http://example.com") == "http://example.com/"


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("http://example.com/x?b=2&a=1", "http://example.com/x?a=1&b=2"),
        ("http://example.com/café", "http://example.com/caf%C3%A9"),
        ("http://example.com/a/../b", "http://example.com/b"),
        ("http://Example.com/b?utm_source=x#top", "http://example.com/b"),
    ],
)
def test_spellings_of_one_url_get_one_id(one, other):
    assert canonicalize_url(one) == canonicalize_url(other)


def test_canonicalize_is_idempotent():
    url = "https://example.com/p?b=2&a=1&utm_campaign=z"
    assert canonicalize_url(canonicalize_url(url)) == canonicalize_url(url)


def test_source_domain():
    assert source_domain("https://www.theguardian.com/world/x") == "theguardian.com"
    assert source_domain("http://127.0.0.1:8080/x") == "127.0.0.1:8080"


@pytest.mark.parametrize(
    ("url", "canonical", "host"),
    [
        ("http://[::1]:8080/x?utm_source=a", "http://[::1]:8080/x", "[::1]:8080"),
        ("http://[2001:DB8::1]/", "http://[2001:db8::1]/", "[2001:db8::1]"),
        ("http://Example.com:99999/a", "http://example.com:99999/a", "example.com:99999"),
        ("http://example.com:abc/", "http://example.com:abc/", "example.com:abc"),
        ("http://[::1/unbalanced", "http://[::1/unbalanced", ""),
        ("http://user:secret@Example.com/", "http://user@example.com/", "example.com"),
    ],
)
def test_hostile_urls_never_raise(url, canonical, host):
    assert canonicalize_url(url) == canonical
    assert host_port(url) == host
    assert source_domain(url) == host.removeprefix("www.")
