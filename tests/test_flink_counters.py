"""Reading Beam counters back from the Flink metric names Beam's runner gives them."""

from __future__ import annotations

import re

from pipeline.config import REPO_ROOT
from pipeline.services.flink import UNDERSCORED_NAMESPACES, counter_key

OPERATOR = "[10]{PollFeeds__AllFailures__DropSeenItems}"


def test_flink_metric_ids_map_back_to_namespace_and_name():
    assert counter_key(f"{OPERATOR}.wirestream_feed_items") == ("wirestream", "feed_items")
    assert counter_key(f"{OPERATOR}.wirestream.failed_index:rejected_400") == (
        "wirestream.failed",
        "index:rejected_400",
    )
    assert counter_key(f"{OPERATOR}.wirestream.extracted_by_trafilatura") == (
        "wirestream.extracted_by",
        "trafilatura",
    )
    assert counter_key(f"{OPERATOR}.wirestream.entities_skipped_no_model") == (
        "wirestream.entities_skipped",
        "no_model",
    )


def test_every_counter_namespace_with_an_underscore_is_known():
    """A new ``wirestream.<word_with_underscore>`` namespace must join the list, or its
    counters read from Flink would be split in the wrong place."""
    pattern = re.compile(r"""Metrics\.(?:counter|distribution)\(\s*["'](wirestream\.[a-z_]+)["']""")
    found = set()
    for folder in ("transforms", "pipeline"):
        for path in (REPO_ROOT / folder).rglob("*.py"):
            found |= {n for n in pattern.findall(path.read_text()) if "_" in n}
    assert found <= set(UNDERSCORED_NAMESPACES), found - set(UNDERSCORED_NAMESPACES)
    assert "wirestream.extracted_by" in found  # the scan sees the code base
