"""Search in each article's own language: one analysed copy of its title and body.

``title`` and ``body`` are analysed the same way in every language (the standard
analyzer: no stemming, no stop words). So that a German query for ``Wahlen`` finds
``Wahl``, each article also carries ``search.<language>.title`` and
``search.<language>.body``, mapped to the language analyzer Elasticsearch and OpenSearch
both ship without plugins (CJK: the ``cjk`` analyzer's bigrams). Only the article's
language gets the copy, so each text is analysed twice, not once per language; the
template leaves the copy out of ``_source`` (``search`` is indexed, never stored), so
the stored document does not grow. Anything that rewrites a document from its
``_source`` (a partial update) sends the copy again: :func:`search_fields`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

#: ISO 639-1 code -> built-in analyzer, in both Elasticsearch 9 and OpenSearch 2
#: (``tests/test_index_templates.py`` installs every one on both engines).
ANALYZERS: dict[str, str] = {
    "ar": "arabic",
    "bg": "bulgarian",
    "bn": "bengali",
    "ca": "catalan",
    "ckb": "sorani",
    "cs": "czech",
    "da": "danish",
    "de": "german",
    "el": "greek",
    "en": "english",
    "es": "spanish",
    "et": "estonian",
    "eu": "basque",
    "fa": "persian",
    "fi": "finnish",
    "fr": "french",
    "ga": "irish",
    "gl": "galician",
    "hi": "hindi",
    "hu": "hungarian",
    "hy": "armenian",
    "id": "indonesian",
    "it": "italian",
    "ja": "cjk",
    "ko": "cjk",
    "lt": "lithuanian",
    "lv": "latvian",
    "nl": "dutch",
    "no": "norwegian",
    "pt": "portuguese",
    "ro": "romanian",
    "ru": "russian",
    "sv": "swedish",
    "th": "thai",
    "tr": "turkish",
    "zh": "cjk",
}
SEARCH_FIELD = "search"


def search_mapping(languages: Iterable[str] = ANALYZERS) -> dict[str, Any]:
    """Return the mapping of ``search``: per language, a title and a body analysed in it."""
    return {
        "properties": {
            language: {
                "properties": {
                    "title": {"type": "text", "analyzer": analyzer},
                    "body": {"type": "text", "analyzer": analyzer},
                }
            }
            for language, analyzer in sorted(ANALYZERS.items())
            if language in languages
        }
    }


def search_fields(title: str, body: str, language: str | None) -> dict[str, Any]:
    """Return the document's ``search`` field (empty for a language without an analyzer)."""
    if language not in ANALYZERS:
        return {}
    return {SEARCH_FIELD: {language: {"title": title, "body": body}}}


def with_search_mapping(template: dict[str, Any], languages: Iterable[str]) -> dict[str, Any]:
    """Return the articles ``template`` body with ``search`` mapped for ``languages`` and
    left out of ``_source``."""
    mappings = template["template"]["mappings"]
    mappings["properties"][SEARCH_FIELD] = search_mapping(languages)
    mappings["_source"] = {"excludes": [SEARCH_FIELD]}
    return template


def analyzable_languages(client) -> tuple[list[str], list[str]]:
    """Return (languages whose analyzer the node has, those it lacks).

    Every full Elasticsearch and OpenSearch distribution has them all (the
    ``analysis-common`` module); a core-only build has none, and a template naming a
    missing analyzer would make every new index fail. A language left out is still
    searched through ``body``; its ``search.*`` copy is ignored (the mapping is strict).
    """
    from transforms.index.client import BAD_REQUEST_ERRORS

    present = set()
    for analyzer in sorted(set(ANALYZERS.values())):
        try:
            client.indices.analyze(analyzer=analyzer, text="a")
        except BAD_REQUEST_ERRORS:
            continue
        present.add(analyzer)
    have = [lang for lang, analyzer in sorted(ANALYZERS.items()) if analyzer in present]
    return have, sorted(set(ANALYZERS) - set(have))
