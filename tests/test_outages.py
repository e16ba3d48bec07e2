"""Outages heal by themselves: the real node killed mid-stream and started again, and a
write block for 25 s, cost no document, no duplicate, no dead letter and no manual step."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from pipeline.services import local_es
from tests.support.cli import doc_count, sink_counts, wirestream
from tests.support.sample_stream import UNIQUE_ARTICLES, stream_profile
from transforms.dead_letters import read_dead_letters

pytestmark = [pytest.mark.integration, pytest.mark.runner, pytest.mark.long]


def _wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _start_stream(es_client, es_settings, site, tmp_path: Path, seconds: int):
    """Start a stream of the sample site; return it once it has installed its templates
    (before the first article is written)."""
    profile = stream_profile(tmp_path, site, es_settings)
    proc = wirestream("run", "--config", str(profile), "--duration", str(seconds))
    stats_template = f"wirestream-{es_settings.elasticsearch.index_prefix}-stats"
    _wait_for(
        lambda: es_client.indices.exists_index_template(name=stats_template), 120, "templates"
    )
    return proc


def _check_healed(proc, es_client, alias: str, tmp_path: Path) -> str:
    out, _ = proc.communicate(timeout=400)
    assert proc.returncode == 0, out[-3000:]
    assert doc_count(es_client, alias) == UNIQUE_ARTICLES, out[-3000:]
    entered, acknowledged, superseded, dead = sink_counts(out)
    assert dead == 0 and entered == acknowledged + superseded, out[-3000:]
    assert read_dead_letters([str(tmp_path / "dead-letter")]) == []
    assert "cannot take" in out  # it did wait for the node, and said so
    return out


def test_node_killed_mid_stream_heals_without_loss(es_client, es_settings, sample_site, tmp_path):
    if not local_es.status().get("ours"):
        pytest.skip("the node is not ours to kill and restart (`wirestream es start`)")
    proc = _start_stream(es_client, es_settings, sample_site, tmp_path, 75)
    try:
        local_es.stop(timeout=0)  # SIGKILL: no graceful shutdown
        time.sleep(20)
    finally:
        local_es.start()
    _check_healed(proc, es_client, es_settings.elasticsearch.alias, tmp_path)


def test_write_block_heals_without_loss(es_client, es_settings, sample_site, tmp_path):
    proc = _start_stream(es_client, es_settings, sample_site, tmp_path, 45)
    try:  # block every write in the cluster, as a disk flood-stage block does
        es_client.cluster.put_settings(persistent={"cluster.blocks.read_only": True})
        time.sleep(25)
    finally:
        es_client.cluster.put_settings(persistent={"cluster.blocks.read_only": None})
    out = _check_healed(proc, es_client, es_settings.elasticsearch.alias, tmp_path)
    assert "write block" in out
