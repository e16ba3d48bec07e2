"""No single URL can fail a job: hostile links in a URL list and in a live feed are
counted as dead letters while the good article beside them is indexed."""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import escape

import pytest

from tests.support.cli import doc_count, sink_counts, wirestream
from transforms.dead_letters import read_dead_letters

pytestmark = [pytest.mark.integration, pytest.mark.runner]

FERRY = "/harbor-gazette/2026/03/ferry-strike-averted.html"


def hostile_urls(base: str) -> list[str]:
    """Links that broke stages before (IPv6 literal, bad ports) and other odd ones; none
    reaches an address outside loopback (the IDN host has an impossible port)."""
    port = base.rsplit(":", 1)[1]
    return [
        f"http://[::1]:{port}/ipv6-literal",
        f"http://[::1]:{port}",
        "http://[::1/unbalanced",
        "http://bücher.example:99999/idn-and-bad-port",
        "http://127.0.0.1:99999/port-out-of-range",
        "http://127.0.0.1:port/not-a-number",
        f"http://user:secret@127.0.0.1:{port}/userinfo",
        "javascript:alert(1)",
        "mailto:desk@example.org",
        f"{base}/{'a' * 2000}",
        f"{base}/%zz%00\x7f",
    ]


def _profile(tmp_path: Path, settings, feed_url: str | None = None) -> Path:
    es = settings.elasticsearch
    feeds = f"feeds: [{{name: hostile, url: '{feed_url}', interval: 5}}]\n" if feed_url else ""
    path = tmp_path / "profile.yaml"
    path.write_text(
        feeds + f"elasticsearch: {{url: '{es.url}', index_prefix: {es.index_prefix}, "
        f"alias: {es.alias}, batch_size: 10, max_wait_seconds: 1}}\n"
        "fetch: {allow_private_addresses: true, timeout: 3, deadline: 10, retries: 0, "
        "host_min_delay: 0}\n"
        f"dead_letter_dir: '{tmp_path / 'dead-letter'}'\n"
    )
    return path


def _dead_urls(tmp_path: Path) -> set[str]:
    return {d["url"] for d in read_dead_letters([str(tmp_path / "dead-letter")])}


def test_backfill_of_a_hostile_url_list_finishes(es_client, es_settings, sample_site, tmp_path):
    urls = [*hostile_urls(sample_site.base_url), sample_site.base_url + FERRY]
    listing = tmp_path / "urls.txt"
    listing.write_text("\n".join(urls) + "\n")
    proc = wirestream("backfill", str(listing), "--config", str(_profile(tmp_path, es_settings)))
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out[-4000:]
    assert doc_count(es_client, es_settings.elasticsearch.alias) == 1
    assert sink_counts(out)[1] == 1, out[-3000:]
    dead = _dead_urls(tmp_path)
    # every hostile line is accounted for by a dead letter naming it (canonicalised)
    assert len(dead) >= len(urls) - 1 - 1, sorted(dead)  # two IPv6 forms may meet in one
    port = sample_site.base_url.rsplit(":", 1)[1]
    assert f"http://[::1]:{port}/ipv6-literal" in dead


def test_stream_with_hostile_links_in_a_feed_keeps_going(
    es_client, es_settings, sample_site, tmp_path
):
    links = [*hostile_urls(sample_site.base_url), sample_site.base_url + FERRY]
    entries = "".join(
        f"<item><title>story {n}</title><link>{escape(link)}</link><guid>hostile-{n}</guid></item>"
        for n, link in enumerate(links)
    )
    feed = f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>{entries}'
    feed += "</channel></rss>"
    feed_url = sample_site.add_route(
        "/hostile/feed.xml", feed, {"Content-Type": "application/rss+xml"}
    )
    profile = _profile(tmp_path, es_settings, feed_url)
    proc = wirestream("run", "--config", str(profile), "--duration", "15")
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out[-4000:]
    assert doc_count(es_client, es_settings.elasticsearch.alias) == 1
    dead = _dead_urls(tmp_path)
    port = sample_site.base_url.rsplit(":", 1)[1]
    expected = {f"http://[::1]:{port}/ipv6-literal", "http://127.0.0.1:99999/port-out-of-range"}
    assert expected <= dead, sorted(dead)
