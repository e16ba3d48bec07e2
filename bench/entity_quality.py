"""Entity quality against gold NER: raw spaCy and our stage on the GUM news mentions.

Gold: the hand-annotated mentions of ``../shared/fixtures/tokeniser/gum-news/`` that are
proper names of three types. Label mapping (documented in docs/entities.md):

    GUM person -> spaCy PERSON -> our ``people``
    GUM organization -> ORG -> ``organizations``
    GUM place -> GPE, LOC -> ``places``

Other labels (NORP, FAC, products, ...) are left out on both sides: GUM types them
differently. A mention matches when it is in the same sentence with the same type and
the same text, compared after ``normalize_title`` without a leading "the" or a trailing
possessive (GUM's spans include both, spaCy's do not): this is "exact span + type" up to
those two tokens, the same rule for gold, raw spaCy and our stage. Our stage's mentions
are the ones it keeps, trimmed and typed as it stores them (junk dropped, titles off, one
label per value, a lone "person" that the gazetteer knows as a big place moved to places),
before the values are renamed to canonical names (that is measured separately, as
distinct values per type).
"""

from __future__ import annotations

import bisect
import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from transforms.enrich import entities_of, mentions_of
from transforms.gazetteer import Gazetteer
from transforms.geocode import people_as_places
from transforms.normalize import normalize_title

GOLD_TYPES = {"person": "people", "organization": "organizations", "place": "places"}
RAW_LABELS = {"PERSON": "people", "ORG": "organizations", "GPE": "places", "LOC": "places"}
TYPES = tuple(GOLD_TYPES.values())


def compare_form(text: str) -> str:
    """Return the text a mention is compared by: normalised, no leading 'the' or possessive."""
    tokens = normalize_title(text).split()
    # A final "." is the normaliser's end of text ("u.s. ."), not part of the name.
    while tokens and (tokens[-1] in ("'s", "'") or not any(ch.isalnum() for ch in tokens[-1])):
        tokens.pop()
    if len(tokens) > 1 and tokens[0] == "the":
        tokens.pop(0)
    return " ".join(tokens)


@dataclass
class GoldDoc:
    """One GUM document: its text, where each sentence starts, and the gold mentions."""

    name: str
    text: str
    starts: list[int]
    gold: list[Counter]  # per sentence: (form, type) -> count

    def sentence_of(self, offset: int) -> int:
        """Return the index of the sentence holding character ``offset``."""
        return bisect.bisect_right(self.starts, offset) - 1


def gold_docs(shared: Path) -> list[GoldDoc]:
    """Return the GUM news documents with their proper-name mentions of the three types."""
    base = shared / "fixtures/tokeniser/gum-news"
    sentences: dict[str, list[dict]] = {}
    for line in (base / "gum-news-sentences.jsonl").read_text().splitlines():
        row = json.loads(line)
        sentences.setdefault(row["doc"], []).append(row)
    index = {row["sent_id"]: i for rows in sentences.values() for i, row in enumerate(rows)}
    docs: dict[str, GoldDoc] = {}
    for name, rows in sentences.items():
        text, starts = "", []
        for row in rows:
            if text:
                text += "\n\n" if row.get("newpar") else " "
            starts.append(len(text))
            text += row["text"]
        docs[name] = GoldDoc(name, text, starts, [Counter() for _ in rows])
    for line in (base / "gum-news-entities.jsonl").read_text().splitlines():
        row = json.loads(line)
        kind = GOLD_TYPES.get(row["etype"])
        if kind and row["proper_name"]:
            docs[row["doc"]].gold[index[row["sent_id"]]][(compare_form(row["text"]), kind)] += 1
    return [docs[name] for name in sorted(docs)]


def raw_mentions(doc, gold: GoldDoc) -> list[Counter]:
    """Return per sentence the (form, type) mentions of raw spaCy, labels mapped."""
    found = [Counter() for _ in gold.gold]
    for ent in doc.ents:
        if ent.label_ in RAW_LABELS:
            key = (compare_form(ent.text), RAW_LABELS[ent.label_])
            found[gold.sentence_of(ent.start_char)][key] += 1
    return found


def stage_mentions(
    doc, gold: GoldDoc, gazetteer: Gazetteer | None, min_population: int | None = None
) -> list[Counter]:
    """Return per sentence the (form, type) mentions our stage keeps, typed as it stores them."""
    moved: set[str] = set()
    if gazetteer is not None:
        _, counts = entities_of(doc)
        moved = people_as_places(gazetteer, counts.get("people", {}), min_population)
    found = [Counter() for _ in gold.gold]
    for m in mentions_of(doc):
        field = "places" if m.field == "people" and m.value in moved else m.field
        if field in TYPES:
            found[gold.sentence_of(m.start)][(compare_form(m.value), field)] += 1
    return found


@dataclass
class Score:
    """Matched, gold and predicted mention counts per type."""

    tp: Counter
    gold: Counter
    predicted: Counter

    def prf(self, kind: str | None = None) -> tuple[float, float, float]:
        """Return (precision, recall, F1) for one type, or over all when ``kind`` is None."""
        tp, g, p = (
            (sum(c.values()) for c in (self.tp, self.gold, self.predicted))
            if kind is None
            else (self.tp[kind], self.gold[kind], self.predicted[kind])
        )
        precision, recall = (tp / p if p else 0.0), (tp / g if g else 0.0)
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return precision, recall, f1


def score(pairs: Iterator[tuple[list[Counter], list[Counter]]]) -> Score:
    """Return the score of (gold, predicted) per-sentence mention multisets."""
    result = Score(Counter(), Counter(), Counter())
    for gold, predicted in pairs:
        for g, p in zip(gold, predicted, strict=True):
            for (_, kind), n in g.items():
                result.gold[kind] += n
            for (_, kind), n in p.items():
                result.predicted[kind] += n
            for (_, kind), n in (g & p).items():
                result.tp[kind] += n
    return result


def dev_texts(shared: Path) -> list[str]:
    """Return the development pages' bodies (article-extraction and fundus-dev)."""
    truth = json.loads((shared / "bench/article-extraction/ground-truth.json").read_text())
    texts = [item["articleBody"] for item in truth.values()]
    for line in (shared / "bench/fundus-dev/manifest.jsonl").read_text().splitlines():
        row = json.loads(line)
        paragraphs = [p for section in row["sections"] for p in section["paragraphs"]]
        texts.append(row["title"] + "\n\n" + "\n\n".join(paragraphs))
    return texts


_NOT_A_NAME_RE = re.compile(
    r"^[\W\d_]+$|\d+ - \d+$|^(?:\w|\w\.)$|\b(?:january|february|march|april|june|july|august|"
    r"september|october|november|december|monday|tuesday|wednesday|thursday|friday|"
    r"saturday|sunday)\b.*\d|\d.*\b(?:am|pm|a\.m\.|p\.m\.)$"
)


def not_a_name(value: str) -> bool:
    """Return whether a value is a number, score, date, time, symbol or a single letter."""
    return bool(_NOT_A_NAME_RE.search(value))
