"""The fetcher against a real HTTP server on 127.0.0.1: caps, bombs, charsets, refusals."""

import gzip
import socket
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import apache_beam as beam
import brotli
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions

from pipeline.config import FetchSettings
from pipeline.services.runners import prism_args
from transforms.article import FeedItem
from transforms.fetch import (
    FetchError,
    FetchPages,
    PacedFetchPageDoFn,
    check_address,
    decode_html,
    fetch_page,
    fetch_url,
    make_robots,
    make_session,
)
from transforms.politeness import PACING_LANES, pacing_lane, recent_hosts

HTML = "text/html; charset=utf-8"


@pytest.fixture
def settings():
    return FetchSettings(
        allow_private_addresses=True, timeout=2, retries=0, max_bytes=100_000, host_min_delay=0
    )


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
    strict = FetchSettings(timeout=2, retries=0, host_min_delay=0)
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


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [("br", brotli.compress), ("deflate", zlib.compress), ("gzip", gzip.compress)],
)
def test_every_content_encoding_decodes_and_bombs_stop(web, settings, encoding, compress):
    page = "<html><body><p>caf\u00e9 au lait</p></body></html>".encode()
    headers = {"Content-Type": HTML, "Content-Encoding": encoding}
    url = web.add_route(f"/{encoding}.html", compress(page), headers)
    assert "café au lait" in fetch_page(make_session(settings), _item(url), settings).html
    bomb = compress(b"<p>" + b"a" * 20_000_000)
    assert len(bomb) < 100_000
    url = web.add_route(f"/{encoding}-bomb.html", bomb, headers)
    with pytest.raises(FetchError) as info:
        fetch_url(make_session(settings), url, settings)
    assert info.value.reason == "too_large"


@pytest.mark.parametrize(
    "url",
    [
        "http://10.1.2.3/",
        "http://192.168.0.1/",
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata: link-local
        "http://[::1]/",
        "http://0.0.0.0/",
        "http://2130706433/",  # 127.0.0.1 written as one decimal number
        "http://localhost/",
    ],
)
def test_non_public_addresses_refused(url):
    with pytest.raises(FetchError) as info:
        check_address(url, allow_private=False)
    assert info.value.reason == "private_address"


def test_every_redirect_hop_is_checked(web, settings):
    web.add_route("/to-file", b"", {"Location": "file:///etc/passwd"}, status=302)
    with pytest.raises(FetchError) as info:
        fetch_url(make_session(settings), web.url("/to-file"), settings)
    assert info.value.reason == "bad_url"
    web.add_route("/to-metadata", b"", {"Location": "http://169.254.169.254/"}, status=302)
    strict = settings.model_copy(update={"allow_private_addresses": False})
    with pytest.raises(FetchError) as info:  # refused before any request is sent
        fetch_url(make_session(strict), web.url("/to-metadata"), strict)
    assert info.value.reason == "private_address"


class _SlowHandler(BaseHTTPRequestHandler):
    """Answers after 0.2 s and records when each request arrived and how many overlapped."""

    def do_GET(self):
        server = self.server
        with server.lock:
            server.arrivals.append(time.monotonic())
            server.in_flight += 1
            server.peak = max(server.peak, server.in_flight)
        time.sleep(0.2)
        body = b"<html><p>ok</p></html>"
        self.send_response(200)
        self.send_header("Content-Type", HTML)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        with server.lock:
            server.in_flight -= 1

    def log_message(self, *args):
        pass


@pytest.fixture
def slow_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SlowHandler)
    server.lock, server.arrivals, server.in_flight, server.peak = threading.Lock(), [], 0, 0
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _fetch_in_threads(url, settings, n):
    def fetch(i):
        fetch_url(make_session(settings), f"{url}/{i}", settings)

    threads = [threading.Thread(target=fetch, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_politeness_caps_requests_in_flight_per_host(slow_server, settings):
    url = f"http://127.0.0.1:{slow_server.server_address[1]}"
    capped = settings.model_copy(update={"host_max_concurrent": 2, "host_min_delay": 0})
    _fetch_in_threads(url, capped, 6)
    assert len(slow_server.arrivals) == 6
    assert slow_server.peak == 2


@pytest.mark.parametrize(
    ("in_flight", "delay", "least_gap"),
    [
        (1, 0.3, 0.5),  # one at a time: the delay after each 0.2 s answer
        (4, 0.1, 0.09),  # overlapping (answers outlast the delay): starts the delay apart
    ],
)
def test_politeness_spaces_requests_to_one_host(slow_server, settings, in_flight, delay, least_gap):
    """The pause counts from the previous answer's end when nothing else is in flight, so
    it shows at the server whatever the answer takes (0.2 s here)."""
    url = f"http://127.0.0.1:{slow_server.server_address[1]}"
    spaced = settings.model_copy(update={"host_max_concurrent": in_flight, "host_min_delay": delay})
    _fetch_in_threads(url, spaced, 4)
    arrivals = sorted(slow_server.arrivals)
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:], strict=False)]
    assert len(arrivals) == 4 and min(gaps) >= least_gap, gaps
    assert (slow_server.peak == 1) == (in_flight == 1), slow_server.peak  # overlapped or not


@pytest.mark.runner
def test_fetch_pages_pauses_a_host_for_the_delay_after_each_answer_on_prism(slow_server, settings):
    """The keyed pacing and the fetch are one step: on Prism, five pages of one host that
    answers in 0.2 s arrive delay (0.3 s) + 0.2 s apart, the pause counted from each end."""
    url = f"http://127.0.0.1:{slow_server.server_address[1]}"
    paused = settings.model_copy(
        update={"host_max_concurrent": 2, "host_min_delay": 0.3, "respect_robots": False}
    )
    p = beam.Pipeline(options=PipelineOptions(prism_args(streaming=False)))
    _ = p | beam.Create([_item(f"{url}/{n}") for n in range(5)]) | FetchPages(paused)
    p.run().wait_until_finish()
    arrivals = sorted(slow_server.arrivals)
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:], strict=False)]
    assert len(arrivals) == 5 and min(gaps) >= 0.5, gaps


def test_a_host_always_gets_the_same_lane_and_hosts_spread_over_lanes():
    hosts = [f"news{n}.example:{8000 + n % 3}" for n in range(5000)]
    lanes = [pacing_lane(host) for host in hosts]
    assert lanes == [pacing_lane(host) for host in hosts]  # no per-process salt
    assert all(0 <= lane < PACING_LANES for lane in lanes)
    assert len(set(lanes)) > PACING_LANES * 0.9


def test_a_lane_forgets_a_host_once_its_start_can_no_longer_delay_one():
    starts = {"a": 100.0, "b": 99.6, "c": 98.0}
    assert recent_hosts(starts, now=100.2, delay=0.5) == {"a": 100.0}


@pytest.mark.runner
def test_a_pacing_lane_keeps_only_hosts_that_can_still_delay_a_request(settings):
    """500 hosts (closed loopback ports) through one lane on Prism: its state keeps the
    hosts asked within the delay (the step reports its size), not every host it has seen."""
    urls = [f"http://127.0.0.1:{port}/a" for port in _closed_ports(500)]
    quick = settings.model_copy(
        update={"host_min_delay": 0.001, "timeout": 1, "respect_robots": False}
    )
    p = beam.Pipeline(options=PipelineOptions(prism_args(streaming=False)))
    _ = (
        p
        | beam.Create([(0, _item(url)) for url in urls])
        | beam.ParDo(PacedFetchPageDoFn(quick)).with_outputs("dead_letter", main="pages")
    )
    result = p.run()
    result.wait_until_finish()
    kept = result.metrics().query(MetricsFilter().with_name("pacing_hosts_kept"))
    sizes = kept["distributions"][0].committed
    assert sizes.count == 500 and sizes.max <= 100, sizes  # unpruned: up to 500


def _closed_ports(n: int) -> list[int]:
    """``n`` loopback ports nothing listens on (bound, then closed)."""
    ports = []
    for _ in range(n):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            ports.append(probe.getsockname()[1])
    return ports


ROBOTS = "User-agent: *\nDisallow: /private/\n\nUser-agent: wirestream\nDisallow: /no-bots/\n"


def test_robots_txt_is_respected_and_cached(web, settings):
    web.add_route("/robots.txt", ROBOTS, {"Content-Type": "text/plain"})
    public = web.add_route("/news/a.html", "<html><p>a</p></html>", {"Content-Type": HTML})
    web.add_route("/no-bots/b.html", "<html><p>b</p></html>", {"Content-Type": HTML})
    session = make_session(settings)
    robots = make_robots(session, settings)
    assert "<p>a</p>" in fetch_page(session, _item(public), settings, robots).html
    with pytest.raises(FetchError) as info:
        fetch_page(session, _item(web.url("/no-bots/b.html")), settings, robots)
    assert info.value.reason == "robots_disallowed"
    # our group, not '*', applies to us: /private/ is allowed for wirestream
    assert robots.allowed(web.url("/private/c.html"))
    paths = [r.path for r in web.requests]
    assert paths.count("/robots.txt") == 1
    assert "/no-bots/b.html" not in paths


@pytest.mark.parametrize(("status", "allowed"), [(404, True), (403, True), (503, False)])
def test_robots_status_rules(web, settings, status, allowed):
    web.add_route("/robots.txt", "oops", {"Content-Type": "text/plain"}, status=status)
    robots = make_robots(make_session(settings), settings)
    assert robots.allowed(web.url("/news/a.html")) is allowed


RFC_ROBOTS = (
    "User-agent: *\nDisallow: /news/\nAllow: /news/public/\nDisallow: /*.pdf$\n"
    "Disallow: /tmp*/cache\n"
)


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/news/public/x.html", True),  # the longest match wins (RFC 9309 2.2.2)
        ("/news/x.html", False),
        ("/files/a.pdf", False),  # '$' anchors the end
        ("/files/a.pdf?page=2", True),
        ("/tmp-1/cache/x", False),  # '*' matches any run of characters
        ("/other.html", True),
    ],
)
def test_robots_rules_follow_rfc_9309(web, settings, path, allowed):
    web.add_route("/robots.txt", RFC_ROBOTS, {"Content-Type": "text/plain"})
    robots = make_robots(make_session(settings), settings)
    assert robots.allowed(web.url(path)) is allowed


def test_robots_crawl_delay_slows_that_host(web, settings):
    web.add_route("/robots.txt", "User-agent: *\nCrawl-delay: 1\n", {"Content-Type": "text/plain"})
    for name in ("a", "b"):
        web.add_route(f"/{name}.html", "<html><p>x</p></html>", {"Content-Type": HTML})
    session = make_session(settings)
    robots = make_robots(session, settings)
    started = time.monotonic()
    for name in ("a", "b"):
        fetch_page(session, _item(web.url(f"/{name}.html")), settings, robots)
    # a and b 1 s apart (robots.txt itself came before)
    assert time.monotonic() - started >= 0.95


class _TrickleHandler(BaseHTTPRequestHandler):
    """Sends one byte every 50 ms for up to 20 s: in the headers (``/headers``) or the
    body, with or without a Content-Length; per-read timeouts never fire."""

    def do_GET(self):
        try:
            if self.path == "/headers":
                self.wfile.write(b"HTTP/1.1 200 OK\r\n")
                self._trickle(b"X-Slow: " + b"a" * 1000)
                return
            self.send_response(200)
            self.send_header("Content-Type", HTML)
            if self.path == "/sized":
                self.send_header("Content-Length", "1000")
            self.end_headers()
            self._trickle(b"<p>" + b"a" * 997)
        except OSError:  # the client cut the connection: what the test wants
            pass

    def _trickle(self, data):
        for byte in data[:400]:
            self.wfile.write(bytes([byte]))
            self.wfile.flush()
            time.sleep(0.05)

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("path", ["/headers", "/sized", "/unsized"])
def test_trickling_server_costs_at_most_the_deadline(settings, path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _TrickleHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        bounded = settings.model_copy(update={"deadline": 1.0, "timeout": 5})
        started = time.monotonic()
        with pytest.raises(FetchError) as info:
            fetch_url(
                make_session(bounded), f"http://127.0.0.1:{server.server_address[1]}{path}", bounded
            )
        elapsed = time.monotonic() - started
        assert info.value.reason == "deadline", info.value
        assert "within 1s" in str(info.value)
        assert 0.9 < elapsed < 2.0, elapsed
    finally:
        server.shutdown()
        server.server_close()


def test_deadline_leaves_a_fast_download_and_the_next_one_alone(web, settings):
    url = web.add_route("/quick", "<html><p>quick</p></html>", {"Content-Type": HTML})
    quick = settings.model_copy(update={"deadline": 0.5})
    session = make_session(quick)
    for _ in range(2):  # the second reuses the pooled connection after the timer is gone
        assert fetch_url(session, url, quick).body.endswith(b"</html>")
        time.sleep(0.6)


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        (
            "“quoted” — café\u00a0x".encode(),
            "text/html; charset=iso-8859-1",
            "“quoted” — café\u00a0x",
        ),
        ('<meta charset="utf-8"><p>naïve</p>'.encode(), "text/html; charset=utf-16", "naïve"),
        (b'<meta charset="utf-8"><p>plain</p>', "text/html; charset=utf-16", "<p>plain</p>"),
        ("<p>wide</p>".encode("utf-16-le"), "text/html; charset=utf-16le", "<p>wide</p>"),
        ("\ufeff<p>bom</p>".encode("utf-16"), "text/html; charset=iso-8859-1", "<p>bom</p>"),
        ("\ufeff<p>bóm</p>".encode(), "text/html; charset=windows-1252", "<p>bóm</p>"),
    ],
)
def test_bytes_win_over_wrong_labels(body, content_type, expected):
    assert expected in decode_html(body, content_type)


def _real_pages(shared_dir):
    """The benchmark pages as text (they are stored as UTF-8)."""
    for path in sorted((shared_dir / "bench").glob("*/html/*.html.gz")):
        yield path.name, gzip.decompress(path.read_bytes()).decode("utf-8")


def test_real_utf8_pages_labelled_latin1_decode_as_utf8(shared_dir):
    checked = 0
    for name, text in _real_pages(shared_dir):
        if not text.isascii():
            assert decode_html(text.encode(), "text/html; charset=iso-8859-1") == text, name
            checked += 1
    assert checked >= 100


def test_real_windows1252_pages_are_not_taken_for_utf8(shared_dir):
    """The other side of the rule: genuine windows-1252 bytes of the same real pages
    (where they fit in it) still decode as what their header says."""
    checked = 0
    for name, text in _real_pages(shared_dir):
        try:
            raw = text.encode("cp1252")
        except UnicodeEncodeError:
            continue
        if not raw.isascii():
            assert decode_html(raw, "text/html; charset=windows-1252") == text, name
            checked += 1
    assert checked >= 50, checked
