"""The fetcher against a real HTTP server on 127.0.0.1: caps, bombs, charsets, refusals."""

import gzip
import socket

import pytest

from pipeline.config import FetchSettings
from transforms.article import FeedItem
from transforms.fetch import FetchError, decode_html, fetch_page, fetch_url, make_session

HTML = "text/html; charset=utf-8"


@pytest.fixture
def settings():
    return FetchSettings(allow_private_addresses=True, timeout=2, retries=0, max_bytes=100_000)


def _item(url):
    return FeedItem(url=url, feed_url="http://127.0.0.1/feed")


def test_fetches_page_with_user_agent(web, settings):
    url = web.add_route("/a.html", "<html><body><p>hello</p></body></html>", {"Content-Type": HTML})
    page = fetch_page(make_session(settings), _item(url), settings)
    assert "<p>hello</p>" in page.html
    assert page.final_url == url
    (record,) = [r for r in web.requests if r.path == "/a.html"]
    assert record.headers["User-Agent"] == settings.user_agent


def test_private_addresses_are_refused_by_default(web):
    url = web.add_route("/a.html", "<html></html>", {"Content-Type": HTML})
    strict = FetchSettings(timeout=2, retries=0)
    with pytest.raises(FetchError) as info:
        fetch_url(make_session(strict), url, strict)
    assert info.value.reason == "private_address"
    assert "allow_private_addresses" in str(info.value)
    assert web.requests == []  # nothing was sent


def test_declared_size_over_cap(web, settings):
    url = web.add_route("/big.html", b"x" * 200_000, {"Content-Type": HTML})
    with pytest.raises(FetchError) as info:
        fetch_url(make_session(settings), url, settings)
    assert info.value.reason == "too_large"


def test_decompression_bomb_stops_at_cap(web, settings):
    bomb = gzip.compress(b"<p>" + b"a" * 20_000_000)
    assert len(bomb) < 100_000  # small on the wire
    url = web.add_route("/bomb.html", bomb, {"Content-Type": HTML, "Content-Encoding": "gzip"})
    with pytest.raises(FetchError) as info:
        fetch_url(make_session(settings), url, settings)
    assert info.value.reason == "too_large"
    assert "decoded" in str(info.value)


def test_redirects_followed_and_limited(web, settings):
    final = web.add_route("/final.html", "<html><p>end</p></html>", {"Content-Type": HTML})
    web.add_route("/r1", b"", {"Location": "/final.html"}, status=301)
    page = fetch_page(make_session(settings), _item(web.url("/r1")), settings)
    assert page.final_url == final
    for i in range(4):
        web.add_route(f"/loop{i}", b"", {"Location": f"/loop{i + 1}"}, status=302)
    limited = settings.model_copy(update={"max_redirects": 2})
    with pytest.raises(FetchError) as info:
        fetch_url(make_session(limited), web.url("/loop0"), limited)
    assert info.value.reason == "too_many_redirects"


def test_not_html_and_http_errors(web, settings):
    pdf = web.add_route("/doc.pdf", b"%PDF-1.4", {"Content-Type": "application/pdf"})
    with pytest.raises(FetchError) as info:
        fetch_page(make_session(settings), _item(pdf), settings)
    assert info.value.reason == "not_html"
    with pytest.raises(FetchError) as info:
        fetch_page(make_session(settings), _item(web.url("/missing.html")), settings)
    assert info.value.reason == "http_404"


def test_timeout_on_silent_server(settings):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # accepts the connection in the backlog, never answers
    try:
        quick = settings.model_copy(update={"timeout": 0.5})
        with pytest.raises(FetchError) as info:
            fetch_url(make_session(quick), f"http://127.0.0.1:{silent.getsockname()[1]}/", quick)
        assert info.value.reason == "timeout"
    finally:
        silent.close()


def test_connection_refused_is_a_reason_not_a_crash(settings):
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    with pytest.raises(FetchError) as info:
        fetch_url(make_session(settings), f"http://127.0.0.1:{port}/", settings)
    assert info.value.reason == "connection"


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        ("café – “quoted”".encode("cp1252"), "text/html; charset=windows-1252", "café – “quoted”"),
        (b'<meta charset="iso-8859-1"><p>caf\xe9 \x93x\x94', "text/html", "café “x”"),
        ("naïve".encode(), "text/html", "naïve"),
        ("Ærøskøbing".encode("cp1252"), "text/html; charset=utf-8", "Ærøskøbing"),
    ],
)
def test_decode_html_charsets(body, content_type, expected):
    assert expected in decode_html(body, content_type)


def test_non_utf8_page_over_http(web, settings):
    body = "<html><head></head><body><p>Le café coûte £3</p></body></html>".encode("cp1252")
    url = web.add_route("/fr.html", body, {"Content-Type": "text/html; charset=windows-1252"})
    page = fetch_page(make_session(settings), _item(url), settings)
    assert "Le café coûte £3" in page.html
