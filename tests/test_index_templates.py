"""Index templates on the real node: profiles whose prefixes overlap coexist, a foreign
template that would clash is named before any job starts, and a backfill refreshes its
indices less often while it writes and gives them back their interval after."""

from __future__ import annotations

import pytest

from pipeline.config import Settings
from transforms.index.names import template_name
from transforms.index.templates import (
    TemplateConflict,
    bulk_loading,
    install_index_template,
    install_stats_template,
)

pytestmark = pytest.mark.integration


def _es(prefix: str):
    return Settings().with_overrides(elasticsearch={"index_prefix": prefix, "alias": prefix})


def test_overlapping_prefixes_each_keep_their_indices(es_client, es_settings):
    base = es_settings.elasticsearch.index_prefix  # installed by the fixture
    longer = _es(f"{base}-as-html")
    try:
        install_index_template(es_client, longer.elasticsearch)  # refused before: same priority
        index = install_stats_template(es_client, longer.elasticsearch, longer.stats)
        es_client.indices.create(index=f"{base}-as-html-2026.03")
        es_client.indices.create(index=index)
        aliases = es_client.indices.get_alias(index=f"{base}-as-html-2026.03")
        assert set(aliases[f"{base}-as-html-2026.03"]["aliases"]) == {f"{base}-as-html"}
        stats = es_client.indices.get_mapping(index=index)[index]["mappings"]
        assert "window_seconds" in stats["properties"]  # the stats template beat both
    finally:
        for name in (f"{base}-as-html-2026.03", f"{base}-as-html-stats"):
            es_client.options(ignore_status=404).indices.delete(index=name)
        for name in (template_name(longer.elasticsearch), f"wirestream-{base}-as-html-stats"):
            es_client.options(ignore_status=404).indices.delete_index_template(name=name)


def test_a_clashing_foreign_template_is_named(es_client, es_settings):
    prefix = f"{es_settings.elasticsearch.index_prefix}x"
    foreign = f"other-tool-{prefix}"
    own = _es(prefix).elasticsearch
    es_client.indices.put_index_template(
        name=foreign, index_patterns=[f"{prefix}-2026*"], priority=200 + len(prefix)
    )
    try:
        with pytest.raises(TemplateConflict) as info:
            install_index_template(es_client, own)
        message = str(info.value)
        assert template_name(own) in message and foreign in message
    finally:
        es_client.indices.delete_index_template(name=foreign)


def _refresh_intervals(client, settings) -> dict[str, str]:
    """The refresh interval of each articles index of ``settings``, and of its template."""
    es = settings.elasticsearch
    found = client.indices.get_settings(index=es.alias, name="index.refresh_interval")
    intervals = {name: got["settings"]["index"]["refresh_interval"] for name, got in found.items()}
    template = client.indices.get_index_template(name=template_name(es))["index_templates"][0]
    intervals["template"] = template["index_template"]["template"]["settings"]["index"][
        "refresh_interval"
    ]
    return intervals


@pytest.mark.parametrize("ends", ["normally", "with an error"])
def test_a_backfill_refreshes_less_while_it_writes_then_restores(es_client, es_settings, ends):
    es = es_settings.elasticsearch
    old, new = f"{es.index_prefix}-2026.01", f"{es.index_prefix}-2026.02"
    es_client.index(index=old, id="before", document={"title": "before"}, refresh=True)
    assert set(_refresh_intervals(es_client, es_settings).values()) == {"5s"}

    try:
        with bulk_loading(es):
            es_client.index(index=new, id="during", document={"title": "during"})
            during = _refresh_intervals(es_client, es_settings)
            if ends != "normally":
                raise KeyboardInterrupt
    except KeyboardInterrupt:
        pass

    assert during == {old: "30s", new: "30s", "template": "30s"}  # made during one too
    assert _refresh_intervals(es_client, es_settings) == {old: "5s", new: "5s", "template": "5s"}
    hits = es_client.search(index=es.alias, query={"ids": {"values": ["during"]}})
    assert hits["hits"]["total"]["value"] == 1  # searchable at once: refreshed at the end


def test_the_next_job_undoes_what_a_killed_backfill_left(es_client, es_settings):
    es = es_settings.elasticsearch
    index = f"{es.index_prefix}-2026.01"
    install_index_template(es_client, es, refresh=es.backfill_refresh_interval)
    es_client.indices.create(index=index)  # a backfill killed here never restores
    assert _refresh_intervals(es_client, es_settings)[index] == "30s"
    install_index_template(es_client, es)  # what every run and backfill does first
    assert _refresh_intervals(es_client, es_settings) == {index: "5s", "template": "5s"}
