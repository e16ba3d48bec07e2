"""Shared fixtures: the real local Elasticsearch, the fixture web server, ../shared data."""

from __future__ import annotations

import os
import uuid
import warnings
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from pipeline.config import Settings
from pipeline.services.sample_site import FixtureServer, serve_sample_site
from tests.support.paths import ES_URL, OPENSEARCH_URL, SHARED

# CI replays the same examples every run (a new failing example is found locally, with
# the random profile, not by a submission's CI); locally every run explores new ones.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The read-only ../shared folder (seeds, fixtures, benchmark pages)."""
    if not SHARED.is_dir():
        pytest.skip(f"../shared not found at {SHARED}; set WIRESTREAM_SHARED")
    return SHARED


@pytest.fixture(scope="session")
def es_client():
    """A client of the real local node; fails (in CI) or skips when it is not running."""
    from elasticsearch import Elasticsearch

    client = Elasticsearch(ES_URL, request_timeout=30)
    try:
        client.cluster.health(wait_for_status="yellow", timeout="30s")
    except Exception as exc:
        message = f"Elasticsearch not reachable at {ES_URL} ({exc}); run `wirestream es start`"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    _lift_leftover_write_block(client)
    yield client
    client.close()


def _lift_leftover_write_block(client) -> None:  # an elasticsearch-py or opensearch-py client
    """Clear the cluster-wide write block that ``test_outages`` sets and lifts: a run killed
    while it was on (a lost machine, a CI timeout) leaves it in the node's data folder, and
    every later run would fail on its first write."""
    settings = client.cluster.get_settings(flat_settings=True)
    for scope in ("persistent", "transient"):
        if settings[scope].get("cluster.blocks.read_only") == "true":
            warnings.warn(
                f"lifting a {scope} cluster.blocks.read_only left by a killed run", stacklevel=2
            )
            client.cluster.put_settings(body={scope: {"cluster.blocks.read_only": None}})


def private_settings(tmp_path, **elasticsearch) -> Settings:
    """Settings for a real node (``elasticsearch`` keys) under a private prefix and alias."""
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    return Settings().with_overrides(
        elasticsearch={
            "index_prefix": prefix,
            "alias": prefix,
            "batch_size": 20,
            "max_wait_seconds": 1,
            "max_retries": 2,
            **elasticsearch,
        },
        fetch={"allow_private_addresses": True, "timeout": 5, "retries": 0},
        dead_letter_dir=str(tmp_path / "dead-letter"),
    )


@pytest.fixture
def es_settings(es_client, tmp_path) -> Settings:
    """Settings for the real node with a private index prefix and alias, removed after."""
    from transforms.index.names import template_name
    from transforms.index.templates import install_index_template

    settings = private_settings(tmp_path, url=ES_URL)
    prefix = settings.elasticsearch.index_prefix
    install_index_template(es_client, settings.elasticsearch)
    yield settings
    names = list(es_client.indices.get(index=f"{prefix}-*", allow_no_indices=True))
    if names:
        es_client.indices.delete(index=",".join(names))
    es_client.options(ignore_status=404).indices.delete_index_template(
        name=template_name(settings.elasticsearch)
    )
    for name in ("stories", "stats"):  # the templates a run installs for its own indices
        es_client.options(ignore_status=404).indices.delete_index_template(
            name=f"{template_name(settings.elasticsearch)}-{name}"
        )


@pytest.fixture(scope="session")
def os_client():
    """A client of the real local OpenSearch node (``wirestream opensearch start``, which
    the test script runs); fails in CI, skips elsewhere, when it is not running."""
    from pipeline.config import ElasticsearchSettings
    from transforms.index.client import make_client

    client = make_client(ElasticsearchSettings(engine="opensearch", url=OPENSEARCH_URL))
    try:
        client.raw.cluster.health(wait_for_status="yellow", request_timeout=40)
    except Exception as exc:
        message = (
            f"OpenSearch not reachable at {OPENSEARCH_URL} ({exc}); "
            "run `wirestream opensearch start`"
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    _lift_leftover_write_block(client.raw)  # opensearch-py's own client
    yield client
    client.close()


@pytest.fixture
def os_settings(os_client, tmp_path) -> Settings:
    """Settings for the real OpenSearch node with a private prefix and alias, removed after."""
    from transforms.index.names import template_name
    from transforms.index.templates import install_index_template

    settings = private_settings(tmp_path, url=OPENSEARCH_URL, engine="opensearch")
    prefix = settings.elasticsearch.index_prefix
    install_index_template(os_client, settings.elasticsearch)
    yield settings
    raw = os_client.raw
    raw.indices.delete(index=f"{prefix}-*", ignore_unavailable=True, allow_no_indices=True)
    for suffix in ("", "-stories", "-stats"):
        name = template_name(settings.elasticsearch) + suffix
        raw.indices.delete_index_template(name=name, ignore=404)


@pytest.fixture
def sample_site():
    """The bundled sample news site, served on 127.0.0.1."""
    with serve_sample_site() as server:
        yield server


@pytest.fixture
def web(tmp_path):
    """An empty fixture server (tests add routes) on 127.0.0.1."""
    with FixtureServer(tmp_path) as server:
        yield server


@pytest.fixture(scope="session")
def sample_stream(es_client, tmp_path_factory):
    """One ``wirestream run`` over the sample site (plus a feed that is gone), with
    ingestion-health stats, into a private prefix: shared by the tests that only read
    what such a run leaves (health counts, Kibana panels); removed at the end."""
    from tests.support.sample_stream import SampleStream, run_sample_stream

    prefix = f"test-{uuid.uuid4().hex[:8]}"
    try:
        with serve_sample_site() as site:
            output = run_sample_stream(tmp_path_factory.mktemp("stream"), site, ES_URL, prefix)
        yield SampleStream(prefix, f"{prefix}-stats", output)
    finally:
        names = list(es_client.indices.get(index=f"{prefix}*", allow_no_indices=True))
        if names:
            es_client.indices.delete(index=",".join(names))
        for template in (
            f"wirestream-{prefix}",
            f"wirestream-{prefix}-stats",
            f"wirestream-{prefix}-stories",
        ):
            es_client.options(ignore_status=404).indices.delete_index_template(name=template)
