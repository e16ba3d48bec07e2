"""Canonical URLs are the identity of an article."""

from transforms.urls import canonicalize_url, source_domain


def test_tracking_parameters_and_fragment_are_dropped():
    url = "HTTPS://WWW.Example.com/a/b.html?id=3&utm_source=rss&utm_medium=feed&fbclid=x#comments"
    assert canonicalize_url(url) == "https://www.example.com/a/b.html?id=3"


def test_meaningful_query_and_port_are_kept():
    assert canonicalize_url("http://127.0.0.1:8080/x?page=2") == "http://127.0.0.1:8080/x?page=2"
    assert canonicalize_url("http://example.com") == "http://example.com/"


def test_canonicalize_is_idempotent():
    url = "https://example.com/p?b=2&a=1&utm_campaign=z"
    assert canonicalize_url(canonicalize_url(url)) == canonicalize_url(url)


def test_source_domain():
    assert source_domain("https://www.theguardian.com/world/x") == "theguardian.com"
    assert source_domain("http://127.0.0.1:8080/x") == "127.0.0.1:8080"
