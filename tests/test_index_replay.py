"""Dead letters of an outage are re-offered by themselves, once, never over newer data."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.articles import sample_article
from transforms.dead_letters import (
    Failure,
    dead_letter_line,
    read_dead_letters,
    write_dead_letter_file,
)
from transforms.index.bulk import bulk_index
from transforms.index.documents import to_action
from transforms.index.replay import replay_transient

pytestmark = pytest.mark.integration


def test_outage_dead_letters_are_replayed_once(es_client, es_settings, tmp_path):
    es = es_settings.elasticsearch
    directory = str(tmp_path / "dead-letter")
    actions = [to_action(sample_article(n), es.index_prefix) for n in range(3)]
    newer = to_action(sample_article(2).replace(title="Story 2, updated"), es.index_prefix)
    assert bulk_index(es_client, [newer], es) == (1, [])  # indexed after the outage
    lines = [dead_letter_line(Failure("index", "unavailable", "u", "down", a)) for a in actions]
    lines.append(dead_letter_line(Failure("index", "rejected_400", "r", "mapping", actions[0])))
    lines.append(dead_letter_line(Failure("fetch", "timeout", "http://127.0.0.1/x", "slow")))
    original = write_dead_letter_file(directory, "index", lines)

    done = replay_transient(es_client, directory, es)
    assert (done.files, done.indexed, done.superseded, done.still_failing) == (1, 2, 1, 0)
    es_client.indices.refresh(index=es.alias)
    assert es_client.get(index=newer["_index"], id=newer["_id"])["_source"]["title"] == (
        "Story 2, updated"
    )
    assert Path(original + ".replayed").exists() and not Path(original).exists()
    left = read_dead_letters([directory])
    assert sorted(r["reason"] for r in left) == ["rejected_400", "timeout"]

    again = replay_transient(es_client, directory, es)
    assert again.files == 0
