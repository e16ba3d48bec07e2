"""Index templates on the real node: profiles whose prefixes overlap coexist, and a
foreign template that would clash is named before any job starts."""

from __future__ import annotations

import pytest

from pipeline.config import Settings
from pipeline.elastic import (
    TemplateConflict,
    install_index_template,
    install_stats_template,
    template_name,
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
