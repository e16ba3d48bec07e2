"""Streams over the bundled sample site: a profile for ``wirestream run``, and one
run of it shared by the tests that only read its results (see ``conftest.sample_stream``)."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from pipeline.config import REPO_ROOT
from pipeline.services.sample_site import feed_urls

UNIQUE_ARTICLES = 11  # the sample site's distinct article URLs across its four feeds


@dataclass(frozen=True)
class SampleStream:
    """What one ``wirestream run`` over the sample site left: its alias (also the index
    prefix), its ingestion-health index and its console output."""

    alias: str
    stats_index: str
    output: str


def stream_profile(tmp_path, site, settings, interval=5, fetch_timeout=5):
    es = settings.elasticsearch
    feeds = "\n".join(
        f"  - {{name: {f['name']}, url: '{f['url']}', interval: {interval}, language: en}}"
        for f in feed_urls(site)
    )
    path = tmp_path / "profile.yaml"
    path.write_text(
        f"feeds:\n{feeds}\n"
        f"elasticsearch: {{url: '{es.url}', index_prefix: {es.index_prefix}, alias: {es.alias}, "
        "batch_size: 20, max_wait_seconds: 1}\n"
        f"fetch: {{allow_private_addresses: true, timeout: {fetch_timeout}, retries: 0}}\n"
        f"dead_letter_dir: '{tmp_path / 'dead-letter'}'\n"
    )
    return path


def feeds_profile(tmp_path, settings, feeds: dict[str, str], interval: float, **sections) -> Path:
    """Write a ``wirestream run`` profile for ``feeds`` (name -> URL) into the private
    index of ``settings``; ``sections`` add to or override its sections (``fetch=...``)."""
    es = settings.elasticsearch
    profile = {
        "feeds": [
            {"name": name, "url": url, "interval": interval, "language": "en"}
            for name, url in feeds.items()
        ],
        "elasticsearch": {
            "url": es.url,
            "index_prefix": es.index_prefix,
            "alias": es.alias,
            "batch_size": 20,
            "max_wait_seconds": 1,
        },
        "dead_letter_dir": str(tmp_path / "dead-letter"),
    }
    fetch = {"allow_private_addresses": True, "timeout": 5, "retries": 0}
    profile["fetch"] = fetch | sections.pop("fetch", {})
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump(profile | sections))
    return path


def run_sample_stream(tmp_path, site, es_url: str, prefix: str, duration: int = 20) -> str:
    """Run ``wirestream run`` on the sample site plus one missing feed; return its output.

    Long enough for two polls of each of the site's five feeds: a host's feeds are first
    due one after another (``transforms.feeds.first_poll_offsets``)."""
    feeds = [*feed_urls(site), {"name": "gone", "url": site.url("gone/feed.xml")}]
    profile = tmp_path / "profile.yaml"
    profile.write_text(
        yaml.safe_dump(
            {
                "feeds": [{**f, "interval": 5, "language": "en"} for f in feeds],
                "elasticsearch": {
                    "url": es_url,
                    "index_prefix": prefix,
                    "alias": prefix,
                    "batch_size": 20,
                    "max_wait_seconds": 1,
                },
                "fetch": {"allow_private_addresses": True, "timeout": 5, "retries": 0},
                "stats": {"window_seconds": 5},
                "dead_letter_dir": str(tmp_path / "dead-letter"),
            }
        )
    )
    command = ["run", "--config", str(profile), "--duration", str(duration)]
    run = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *command],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout
