"""Stories and syndicated copies on real news text (ECB+ documents of real events):
the clusterer, its window, its restart, and ``wirestream stories``."""

from __future__ import annotations

import json
import os
import pickle
import random
import subprocess
import sys
from collections import deque
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from pipeline.config import REPO_ROOT
from pipeline.story_pass import assign_rows, story_inputs
from tests.support.stories import ecbplus, event, row
from transforms.settings import EnrichSettings, StoriesSettings
from transforms.story_clustering import StoryClusterer, StoryInput, cluster, clusterer_of


@pytest.fixture(scope="module")
def enrichment():
    from pipeline.pages import Enrichment

    return Enrichment(EnrichSettings())


def _edited(original: dict, doc_id: str, hours: float, source: str) -> dict:
    """Return a republisher's copy: another first paragraph and a footer, later."""
    body = original["body"].split("\n")
    return {
        **original,
        "id": doc_id,
        "source": source,
        "url": f"https://{source}/{doc_id}",
        "published_at": original["published_at"].replace("T08", f"T{8 + int(hours):02d}"),
        "body": "\n".join(["Republished with permission.", *body[1:], "Share this story."]),
    }


def test_copies_join_their_original_and_share_its_group(shared_dir):
    first, second = event(shared_dir, "2_ecbplus", 2)
    original = row(first, 0, "wire.example")
    verbatim = {**original, "id": "verbatim", "source": "daily.example"}
    verbatim["published_at"] = original["published_at"].replace("T08", "T10")
    edited = _edited(original, "edited", 3, "weekly.example")
    other = row(second, 1, "other.example")
    rows = [edited, verbatim, original, other]

    assigned = assign_rows(rows, clusterer_of(StoriesSettings()), None)

    assert [a.doc_id for a in assigned] == [r["id"] for r in rows]  # input order
    by_id = {a.doc_id: a for a in assigned}
    assert by_id["verbatim"].duplicate_of == first["doc_id"]
    assert by_id["edited"].duplicate_of == first["doc_id"]
    assert {by_id[i].copy_group for i in ("verbatim", "edited", first["doc_id"])} == {
        first["doc_id"]
    }
    assert by_id[first["doc_id"]].duplicate_of is None
    assert by_id[second["doc_id"]].duplicate_of is None  # same event, not a copy
    assert by_id[second["doc_id"]].copy_group == second["doc_id"]
    assert {by_id[i].story_id for i in ("verbatim", "edited")} == {first["doc_id"]}


def test_one_event_from_several_outlets_is_one_story_apart_from_its_twin(shared_dir, enrichment):
    reports = event(shared_dir, "29_ecbplus", 4)
    twin = event(shared_dir, "29_ecb", 2)  # the same kind of event, another one
    # the news of the same hours: 150 reports of other events (as a stream sees them)
    others = [d for d in ecbplus(shared_dir) if d["topic"] >= 30][:150]
    rows = [row(d, 0.01 * i, f"background{i % 7}.example") for i, d in enumerate(others)]
    rows += [row(d, 2 * i + 1, f"outlet{i}.example") for i, d in enumerate(reports)]
    rows += [row(d, 2 * i + 2, f"other{i}.example") for i, d in enumerate(twin)]
    clusterer = clusterer_of(StoriesSettings())

    assigned = {a.doc_id: a for a in assign_rows(rows, clusterer, enrichment)}

    story = {assigned[d["doc_id"]].story_id for d in reports}
    assert story == {reports[0]["doc_id"]}  # the first report names the story
    assert not story & {assigned[d["doc_id"]].story_id for d in twin}
    (document,) = [d for d in clusterer.take_touched() if d["story_id"] == reports[0]["doc_id"]]
    assert document["size"] == 4 and document["source_count"] == 4
    assert document["first_seen"].startswith("2026-03-02T09:00")
    assert document["last_seen"].startswith("2026-03-02T15:00")
    assert document["title"] == rows[len(others)]["title"]
    assert document["people"] or document["organizations"] or document["places"]


def test_a_story_closes_a_window_after_its_last_article_and_is_forgotten(shared_dir):
    first, second = event(shared_dir, "2_ecbplus", 2)
    clusterer = clusterer_of(StoriesSettings(window_hours=24))
    rows = [row(first, 0, "a.example"), row(second, 30, "b.example")]
    (early,), (late,) = (story_inputs([r], None) for r in rows)

    clusterer.assign(early)
    clusterer.take_touched()
    assigned = clusterer.assign(late)

    assert assigned.story_id == second["doc_id"]  # the first story had closed
    assert clusterer.open_stories() == 1
    assert first["doc_id"] not in clusterer.member_of
    assert first["doc_id"] not in clusterer.signatures
    assert all(second["doc_id"] in ids or not ids for ids in clusterer.postings.values())
    written = clusterer.take_touched()
    assert [d["story_id"] for d in written] == [second["doc_id"]]  # closed one already written


def test_closing_writes_a_story_changed_since_the_last_write(shared_dir):
    first, second = event(shared_dir, "2_ecbplus", 2)
    clusterer = clusterer_of(StoriesSettings(window_hours=24))
    early, late = story_inputs([row(first, 0, "a.example"), row(second, 30, "b.example")], None)
    clusterer.assign(early)
    clusterer.assign(late)  # closes the first story before anyone took its document
    assert [d["story_id"] for d in clusterer.take_touched()] == [
        first["doc_id"],
        second["doc_id"],
    ]


def _mixed_rows(shared_dir) -> list[dict]:
    docs = event(shared_dir, "29_ecbplus", 4) + event(shared_dir, "43_ecbplus", 3)
    docs += event(shared_dir, "19_ecb", 3)
    random.Random(7).shuffle(docs)
    return [row(d, i, f"s{i % 3}.example") for i, d in enumerate(docs)]


def test_a_restarted_clusterer_continues_every_story(shared_dir):
    items = story_inputs(_mixed_rows(shared_dir), None)
    whole_run = clusterer_of(StoriesSettings())
    continuous = [whole_run.assign(i) for i in items]
    before, after = items[:5], items[5:]

    restarted = clusterer_of(StoriesSettings())
    for item, assigned in zip(before, continuous[:5], strict=True):  # read back in time order
        restarted.restore(item, assigned.story_id, assigned.copy_group)
    assert restarted.take_touched() == []  # restoring writes nothing
    resumed = [restarted.assign(i) for i in after]

    assert resumed == continuous[5:]
    assert len({a.story_id for a in continuous}) >= 3


def test_an_article_seen_again_keeps_its_story(shared_dir):
    first, second = event(shared_dir, "2_ecbplus", 2)
    items = story_inputs([row(first, 0, "a.example"), row(second, 1, "b.example")], None)
    clusterer = clusterer_of(StoriesSettings())
    assigned = [clusterer.assign(i) for i in items]
    again = clusterer.assign(items[0])
    assert again == assigned[0]
    assert sum(s.size for s in clusterer.stories.values()) == 2


def _cli(path, seed: str, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "stories", str(path), "--no-entities", *extra],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONHASHSEED": seed},
    )


def test_cli_prints_each_article_in_input_order_the_same_in_every_process(shared_dir, tmp_path):
    rows = _mixed_rows(shared_dir)
    rows[3].pop("published_at")  # missing fields are allowed
    rows[4].pop("id")
    path = tmp_path / "articles.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))

    first, second = _cli(path, "1"), _cli(path, "2")

    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout  # deterministic: no hash order leaks in
    lines = [json.loads(line) for line in first.stdout.splitlines()]
    assert len(lines) == len(rows)
    assert all(set(line) == {"id", "story_id", "duplicate_of"} for line in lines)
    assert [line["id"] for line in lines][:4] == [r["id"] for r in rows[:4]]
    stories = {line["story_id"] for line in lines}
    assert 3 <= len(stories) < len(rows)
    assert stories <= {line["id"] for line in lines}  # a story is named by an article
    one_pass = _cli(path, "1", "--one-pass", "--short-threshold", "0.05")  # as the stream
    assert one_pass.returncode == 0, one_pass.stderr
    assert [json.loads(line)["id"] for line in one_pass.stdout.splitlines()] == [
        line["id"] for line in lines
    ]

    path.write_text(path.read_text() + "{not json\n")
    bad = _cli(path, "1")
    assert bad.returncode == 2 and f"line {len(rows) + 1}: not JSON" in bad.stderr


def test_a_page_dated_in_the_year_1_does_not_stop_clustering(shared_dir):
    first, second = event(shared_dir, "29_ecbplus", 2)
    ancient, recent = story_inputs([row(first, 0, "a.example"), row(second, 1, "b.example")], None)
    ancient = replace(ancient, time=datetime(1, 1, 1, 1, tzinfo=timezone.utc))
    clusterer = clusterer_of(StoriesSettings())
    assert clusterer.assign(ancient).story_id == first["doc_id"]
    assert clusterer.assign(recent).doc_id == second["doc_id"]
    batch = cluster([ancient, recent], clusterer_of(StoriesSettings(), batch=True))
    assert [a.story_id for a in batch] == [first["doc_id"], second["doc_id"]]


def _drifting_rows() -> list[StoryInput]:
    """An article that, when it comes, can only join an older story, and the story it
    belongs to, which forms after it (and a verbatim copy of it, later)."""
    ferry = "harbour ferry capsized storm passengers rescued coastguard divers island"
    budget = "parliament budget vote minister resigned coalition opposition taxes"
    ferry, budget = ferry.split(), budget.split()  # noqa: SIM905 (two lines, not one list)
    own = [f"detail{i}" for i in range(300)]
    start = datetime(2026, 3, 2, 8, tzinfo=timezone.utc)

    def item(doc_id: str, hours: float, text: list[str], source: str) -> StoryInput:
        when = start + timedelta(hours=hours)
        return StoryInput(doc_id, when, body_normalized=" ".join(text), source=source)

    drifter = ferry[:2] * 2 + budget[:5] * 3 + own[50:80]
    rows = [item("ferry", 0, ferry * 3 + own[:30], "a.example"), item("drifter", 1, drifter, "b")]
    rows += [
        item(f"budget{k}", 2 + k, budget * 3 + own[100 + 30 * k :][:30], "c") for k in range(4)
    ]
    return [*rows, item("copy", 7, drifter, "d")]


def test_a_batch_pass_moves_an_article_to_the_story_that_formed_after_it():
    items = _drifting_rows()
    settings = StoriesSettings()

    stream = {a.doc_id: a for a in cluster(items, clusterer_of(settings))}
    batch_clusterer = clusterer_of(settings, batch=True)
    batch = {a.doc_id: a for a in cluster(items, batch_clusterer)}

    assert stream["drifter"].story_id == "ferry"  # all it could join when it came
    assert {batch[f"budget{k}"].story_id for k in range(4)} == {"budget0"}
    assert batch["drifter"].story_id == "budget0"  # assigned again, a window later
    assert batch["copy"].duplicate_of == "drifter"
    assert batch["copy"].story_id == "budget0"  # a copy follows its original
    assert batch["ferry"].story_id == "ferry"
    documents = {d["story_id"]: d for d in batch_clusterer.take_touched()}
    assert documents["ferry"]["size"] == 1  # what the drifter added was taken back
    assert documents["ferry"]["last_seen"].startswith("2026-03-02T08:00")
    assert (documents["budget0"]["size"], documents["budget0"]["copies"]) == (6, 1)
    assert batch_clusterer.pending == deque() and batch_clusterer.take_finals() == []


def test_a_body_too_short_to_sign_is_a_copy_only_when_body_and_title_repeat():
    start = datetime(2026, 3, 2, 8, tzinfo=timezone.utc)
    brief = "the indian navy foiled a pirate attack in the gulf of aden on friday ."
    title = "navy foils pirate attack"

    def item(doc_id: str, hours: int, title_text: str, body: str) -> StoryInput:
        when = start + timedelta(hours=hours)
        return StoryInput(doc_id, when, title_normalized=title_text, body_normalized=body)

    stub = "subscribe to read the full story ."
    items = [
        item("brief", 0, title, brief),
        item("republished", 2, title, brief),  # 15 words: no MinHash signature
        item("stub-a", 3, "markets close higher", stub),
        item("stub-b", 4, "storm hits the coast", stub),  # the same stub, another story
    ]
    for batch in (False, True):
        assigned = {a.doc_id: a for a in cluster(items, clusterer_of(StoriesSettings(), batch))}
        assert assigned["republished"].duplicate_of == "brief"
        assert assigned["republished"].story_id == assigned["brief"].story_id
        assert assigned["stub-b"].duplicate_of is None


def test_a_state_pickled_by_the_previous_version_still_assigns(shared_dir):
    items = story_inputs(_mixed_rows(shared_dir), None)
    clusterer = clusterer_of(StoriesSettings())
    expected = [clusterer.assign(i) for i in items]
    older = clusterer_of(StoriesSettings())
    for item in items[:5]:
        older.assign(item)
    state = dict(older.__dict__)  # as the version before batch refinement pickled it
    new = ("refine", "idf_frozen", "pending", "final_story", "finals", "waiting_copies", "exact")
    for name in new:
        del state[name]
    for story in state["stories"].values():
        story.members = list(story.members)
    resumed = StoryClusterer.__new__(StoryClusterer)
    resumed.__setstate__(pickle.loads(pickle.dumps(state)))

    assert [resumed.assign(i) for i in items[5:]] == expected[5:]
