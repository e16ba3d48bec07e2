"""Syndicated copies and story clusters, assigned one article at a time.

``StoryClusterer`` sees articles in time order and gives each three fields:

- ``duplicate_of``: the earliest article whose body it (nearly) repeats: MinHash
  signatures (datasketch) over word shingles of ``body_normalized``, LSH bands for
  candidates, estimated Jaccard at least ``copy_threshold``;
- ``copy_group``: the root of its copies (its own id when it copies nothing), so an
  index can count copies per original;
- ``story_id``: the id of the first article of the most similar *open* story (one
  whose last article is at most ``window`` old), when the similarity reaches
  ``threshold``; else its own id, starting a story. Similarity blends the cosine of
  TF-IDF vectors (article against the story's summed vector) with the cosine of
  their entity sets (people, organisations, places, IDF-weighted too).

IDF is counted as articles arrive, in a fixed table of hashed terms (bounded memory,
no corpus to ship). Stories close ``window`` after their last article and are then
forgotten, with their members and signatures: memory follows the number of open
stories, not the length of the run. The same object runs in ``wirestream stories``,
in the stream's stateful step and in the backfill's pass over the index, so
thresholds chosen with the CLI are the pipeline's.

In batch (``cluster`` and the backfill's pass; ``refine`` on), two things change, both
because batch sees every article: IDF is counted over all of them first (``warm``),
so the first articles are weighed like the last; and every article is assigned a
second time once the sweep is a window past it, against the stories as they are then
(its own without it): the first pass sees only what came before an article, the
second sees its whole window, as an average-linkage clustering would. Its story may
change; its copies follow it. The stream assigns once, as articles arrive (it cannot
wait a window). Memory in batch: the open stories of two windows, and the vectors of
the last window's articles.

Written by hand: the libraries that cluster (scikit-learn, river) cluster a fixed set
or have no time window, deterministic ids or entity overlap.
"""

from __future__ import annotations

import hashlib
import heapq
import math
import zlib
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
from datasketch import MinHash, MinHashLSH

from transforms.article import Article
from transforms.dates import iso
from transforms.language import stop_words
from transforms.settings import StoriesSettings

NUM_PERM = 64
SCHEME = "affine32"  # datasketch 2: 32-bit hash values, so a signature is 64 uint32
SHINGLE = 5  # words per shingle: 5-word runs are rare across different reports
IDF_BUCKETS = 1 << 18
DOC_TERMS = 80  # an article's vector keeps its heaviest terms
STORY_TERMS = 300  # a story's summed vector too
TITLE_WEIGHT = 2  # a title word counts as this many body words
# A body this short (a headline, a teaser) shares few words with anything: its cosine
# with a story is lower for the same relatedness, so it has a threshold of its own.
SHORT_WORDS = 50
STORY_ENTITY_TYPES = ("people", "organizations", "places")
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class StoryInput:
    """What clustering needs of an article."""

    doc_id: str
    time: datetime | None
    title_normalized: str = ""
    body_normalized: str = ""
    source: str = ""
    title: str = ""
    entities: dict[str, list[str]] = field(default_factory=dict)
    countries: tuple[str, ...] = ()
    language: str | None = None


@dataclass(frozen=True)
class Assignment:
    """Where an article went."""

    doc_id: str
    story_id: str
    duplicate_of: str | None
    copy_group: str


def words(text: str) -> list[str]:
    """Return the word tokens of normalised ``text`` (punctuation tokens dropped)."""
    return [t for t in text.split() if t.isalnum() or any(c.isalnum() for c in t)]


def content_terms(text: str, language: str | None = None) -> list[str]:
    """Return the words of ``text`` that carry content: no stop words (of ``language``),
    numbers or clitics."""
    stop = stop_words(language)
    return [
        t
        for t in words(text)
        if len(t) > 1 and t not in stop and not t.replace(",", "").replace(".", "").isdigit()
    ]


def _scope(language: str | None) -> str:
    """Return the prefix that keeps each language's terms apart (English's and unknown
    text's have none): articles in two languages share no term, so no story."""
    return f"{language}|" if language and language != "en" else ""


def signature(text: str) -> np.ndarray | None:
    """Return the MinHash of ``text``'s word shingles (uint32), or None when too short."""
    tokens = words(text)
    if len(tokens) < SHINGLE * 4:  # a few words say nothing about copying
        return None
    shingles = {
        " ".join(tokens[i : i + SHINGLE]).encode() for i in range(len(tokens) - SHINGLE + 1)
    }
    minhash = MinHash(num_perm=NUM_PERM, seed=1, scheme=SCHEME)
    minhash.update_batch(list(shingles))
    return minhash.hashvalues.astype(np.uint32)


def _bucket(term: str) -> int:
    return zlib.crc32(term.encode()) % IDF_BUCKETS


def _normalized(weights: dict[str, float], keep: int) -> dict[str, float]:
    top = heapq.nlargest(keep, weights.items(), key=lambda kv: kv[1])
    norm = math.sqrt(sum(w * w for _, w in top)) or 1.0
    return {t: w / norm for t, w in top}


def _cosine(doc: dict[str, float], summed: dict[str, float], norm: float) -> float:
    if not doc or norm == 0:
        return 0.0
    # fsum: exactly rounded, so the set's order (which the hash seed sets) cannot matter
    return math.fsum(doc[t] * summed[t] for t in doc.keys() & summed.keys()) / norm


def _cosine_without(
    doc: dict[str, float], summed: dict[str, float], norm: float, times: int
) -> float:
    """Return the cosine of unit vector ``doc`` with ``summed - times * doc`` (a sum
    holding it ``times`` times: an article and its copies; 0: any other sum)."""
    if times == 0:
        return _cosine(doc, summed, norm)
    dot = _cosine(doc, summed, 1.0)
    rest = norm * norm - 2 * times * dot + times * times
    dot -= times
    return dot / math.sqrt(rest) if rest > 1e-9 and dot > 0 else 0.0


def _exact_key(item: StoryInput) -> bytes | None:
    """Return the digest a body too short to sign is matched on, with its title (two
    stubs such as "subscribe to read" under different titles are not copies)."""
    if not item.body_normalized.strip():
        return None
    text = f"{item.title_normalized}\n{item.body_normalized}".encode()
    return hashlib.blake2b(text, digest_size=16).digest()


def _is_short(item: StoryInput) -> bool:
    return len(words(item.body_normalized)) < SHORT_WORDS


@dataclass
class Story:
    """An open story: its summed vectors and what its index document shows."""

    story_id: str
    title: str
    first_seen: datetime | None
    last_seen: datetime | None
    terms: dict[str, float] = field(default_factory=dict)
    entity_terms: dict[str, float] = field(default_factory=dict)
    size: int = 0
    copies: int = 0
    sources: Counter = field(default_factory=Counter)
    entities: dict[str, Counter] = field(default_factory=dict)
    countries: Counter = field(default_factory=Counter)
    members: dict[str, datetime | None] = field(default_factory=dict)  # id -> time

    norms: tuple[float, float] | None = None  # of terms and entity_terms, until changed

    def vector_norms(self) -> tuple[float, float]:
        """Return the lengths of the summed text and entity vectors."""
        if self.norms is None:
            self.norms = (
                math.sqrt(sum(w * w for w in self.terms.values())),
                math.sqrt(sum(w * w for w in self.entity_terms.values())),
            )
        return self.norms

    def add(self, item: StoryInput, vector: dict[str, float], entity_vector: dict[str, float]):
        self.size += 1
        self.norms = None
        self.members[item.doc_id] = item.time
        if item.time and (self.last_seen is None or item.time > self.last_seen):
            self.last_seen = item.time
        if item.time and (self.first_seen is None or item.time < self.first_seen):
            self.first_seen = item.time
        for target, added, keep in (
            (self.terms, vector, STORY_TERMS),
            (self.entity_terms, entity_vector, STORY_TERMS),
        ):
            for term, weight in added.items():
                target[term] = target.get(term, 0.0) + weight
            if len(target) > keep * 2:  # prune now and then, not on every article
                kept = dict(heapq.nlargest(keep, target.items(), key=lambda kv: kv[1]))
                target.clear()
                target.update(kept)
        if item.source:
            self.sources[item.source] += 1
        for kind in STORY_ENTITY_TYPES:
            self.entities.setdefault(kind, Counter()).update(
                sorted(set(item.entities.get(kind, [])))
            )
        self.countries.update(sorted(set(item.countries)))

    def remove(self, item: StoryInput, vector: dict[str, float], entity_vector: dict[str, float]):
        """Take back what ``add`` added for ``item`` (a batch pass moving it elsewhere)."""
        self.size -= 1
        self.norms = None
        self.members.pop(item.doc_id, None)
        times = [t for t in self.members.values() if t is not None]
        self.first_seen, self.last_seen = (min(times), max(times)) if times else (None, None)
        for target, added in ((self.terms, vector), (self.entity_terms, entity_vector)):
            for term, weight in added.items():
                left = target.get(term, 0.0) - weight
                if left > 1e-9:
                    target[term] = left
                else:
                    target.pop(term, None)
        if item.source:
            self.sources[item.source] -= 1
        for kind in STORY_ENTITY_TYPES:
            self.entities.setdefault(kind, Counter()).subtract(
                sorted(set(item.entities.get(kind, [])))
            )
        self.countries.subtract(sorted(set(item.countries)))
        for counter in (self.sources, self.countries, *self.entities.values()):
            for key in [k for k, n in counter.items() if n <= 0]:
                del counter[key]

    def document(self) -> dict[str, Any]:
        """Return the story's document for the stories index."""

        def top(counter: Counter, n: int = 10) -> list[str]:
            return [value for value, _ in counter.most_common(n)]

        return {
            "story_id": self.story_id,
            "title": self.title,
            "size": self.size,
            "copies": self.copies,
            "sources": top(self.sources, 100),
            "source_count": len(self.sources),
            "first_seen": iso(self.first_seen),
            "last_seen": iso(self.last_seen),
            "people": top(self.entities.get("people", Counter())),
            "organizations": top(self.entities.get("organizations", Counter())),
            "places": top(self.entities.get("places", Counter())),
            "countries": top(self.countries, 20),
        }


@dataclass
class _Copyable:
    """What the copy index remembers of an article: its time and its copy group."""

    time: datetime | None
    group: str
    story_id: str
    exact_key: bytes | None = None  # a body too short to sign: its digest with the title


@dataclass
class _Pending:
    """An article waiting for its second assignment (batch), without its texts."""

    item: StoryInput
    vector: dict[str, float]
    entity_vector: dict[str, float]
    short: bool
    story_id: str
    group: str


class StoryClusterer:
    """Assigns stories and copies to articles seen in time order; see the module doc."""

    def __init__(
        self,
        window: timedelta = timedelta(hours=72),
        threshold: float = 0.225,
        entity_weight: float = 0.4,
        copy_threshold: float = 0.5,
        short_threshold: float = 0.035,
        refine: bool = False,
    ) -> None:
        self.window = window
        self.refine = refine
        self.idf_frozen = False  # counted over every article first (warm)
        self.pending: deque[_Pending] = deque()  # refine: first pass done, second not
        self.final_story: dict[str, str] = {}  # refine: second pass done (open stories)
        self.finals: list[Assignment] = []  # refine: not yet taken
        self.waiting_copies: Counter = Counter()  # refine: pending copies per original
        self.threshold = threshold
        self.short_threshold = short_threshold
        self.entity_weight = entity_weight
        self.copy_threshold = copy_threshold
        self.df = np.zeros(IDF_BUCKETS, dtype=np.uint32)
        self.docs = 0
        self.stories: dict[str, Story] = {}
        self.postings: dict[str, set[str]] = {}  # term -> open stories holding it
        self.member_of: dict[str, str] = {}  # article -> story, for articles seen again
        self.lsh = MinHashLSH(threshold=copy_threshold, num_perm=NUM_PERM)
        self.signatures: dict[str, tuple[np.ndarray | None, _Copyable]] = {}
        self.exact: dict[bytes, str] = {}  # short body and title -> the first article
        self.now: datetime | None = None  # the newest article's time
        self.closed_at: datetime | None = None  # when old stories were last closed
        self.touched: set[str] = set()  # stories changed since the last take_touched
        self.closed: list[dict[str, Any]] = []  # documents of those closed since

    # --- features ------------------------------------------------------------------

    def _idf(self, term: str) -> float:
        return math.log((1 + self.docs) / (1 + int(self.df[_bucket(term)]))) + 1.0

    def _count(self, terms: Iterable[str]) -> None:
        self.docs += 1
        for term in set(terms):
            self.df[_bucket(term)] += 1

    @staticmethod
    def _terms(item: StoryInput) -> tuple[list[str], list[str]]:
        language = item.language
        scope = _scope(language)
        terms = content_terms(item.title_normalized, language) * TITLE_WEIGHT + content_terms(
            item.body_normalized, language
        )
        if scope:
            terms = [scope + t for t in terms]
        entity_terms = [
            f"{scope}{kind[0]}:{value}"
            for kind in STORY_ENTITY_TYPES
            for value in sorted(set(item.entities.get(kind, [])))
        ]
        return terms, entity_terms

    def warm(self, items: Iterable[StoryInput]) -> None:
        """Count IDF over ``items`` (every article a batch pass will see) and keep it."""
        for item in items:
            terms, entity_terms = self._terms(item)
            self._count([*terms, *entity_terms])
        self.idf_frozen = True

    def vectors(self, item: StoryInput) -> tuple[dict[str, float], dict[str, float]]:
        """Return the article's TF-IDF vector and its entity vector (both unit length)."""
        terms, entity_terms = self._terms(item)
        if not self.idf_frozen:
            self._count([*terms, *entity_terms])
        counts = Counter(terms)
        vector = {t: (1 + math.log(n)) * self._idf(t) for t, n in counts.items()}
        entity_vector = {t: self._idf(t) for t in entity_terms}
        return _normalized(vector, DOC_TERMS), _normalized(entity_vector, DOC_TERMS)

    # --- assignment ----------------------------------------------------------------

    def assign(self, item: StoryInput) -> Assignment:
        """Return the article's story and copy fields, and remember it."""
        if item.time and (self.now is None or item.time > self.now):
            self.now = item.time
            if self.refine:
                self._mature()
            if self.closed_at is None or self.now - self.closed_at >= self.window / 100:
                self._close_old()
        known = self.member_of.get(item.doc_id)
        if known is not None:  # seen before (another feed's copy, a restart): same story
            copy = self.signatures.get(item.doc_id)
            group = copy[1].group if copy else item.doc_id
            return Assignment(item.doc_id, known, None if group == item.doc_id else group, group)
        vector, entity_vector = self.vectors(item)
        sig = signature(item.body_normalized)
        original = self._original_of(sig) if sig is not None else self._exact_original(item)
        if original is not None:
            story_id, group = original.story_id, original.group
        short = _is_short(item)
        if original is None:
            story_id, group = self._best_story(item, vector, entity_vector, short), item.doc_id
        assigned = self._join(item, story_id, group, vector, entity_vector, sig)
        if self.refine:
            bare = replace(item, title_normalized="", body_normalized="")
            self.pending.append(_Pending(bare, vector, entity_vector, short, story_id, group))
            if group != item.doc_id:
                self.waiting_copies[group] += 1
        return assigned

    # --- the second assignment (batch) ---------------------------------------------

    def _mature(self, everything: bool = False) -> None:
        """Assign again the pending articles a window older than the newest (all of them
        with ``everything``)."""
        while self.pending and (everything or self._due(self.pending[0].item.time)):
            self.finals.append(self._reassign(self.pending.popleft()))

    def _due(self, time: datetime | None) -> bool:
        """Whether every article of the window after ``time`` has been seen (an undated
        article: once a dated one comes)."""
        return self.now is not None and (time is None or self.now - time > self.window)

    def _reassign(self, pending: _Pending) -> Assignment:
        item, doc_id = pending.item, pending.item.doc_id
        if pending.group != doc_id:  # a copy goes where its original went
            self.waiting_copies[pending.group] -= 1
            if self.waiting_copies[pending.group] <= 0:
                del self.waiting_copies[pending.group]
            target = self.final_story.get(pending.group, pending.story_id)
            if target not in self.stories:
                target = pending.story_id
        else:
            target = self._best_story(
                item, pending.vector, pending.entity_vector, pending.short, pending.story_id
            )
            if target == doc_id and pending.story_id != doc_id and doc_id in self.stories:
                target = pending.story_id  # its own id names a story it is leaving: stay
        if target != pending.story_id:
            old = self.stories[pending.story_id]
            old.remove(item, pending.vector, pending.entity_vector)
            if pending.group != doc_id:
                old.copies -= 1
            self.touched.add(old.story_id)
            if old.size == 0:
                del self.stories[old.story_id]
            self._join(item, target, pending.group, pending.vector, pending.entity_vector, None)
        self.final_story[doc_id] = target
        if doc_id in self.signatures:  # later copies join it where it is now
            self.signatures[doc_id][1].story_id = target
        duplicate_of = pending.group if pending.group != doc_id else None
        return Assignment(doc_id, target, duplicate_of, pending.group)

    def finish(self) -> list[Assignment]:
        """Return the articles' final assignments not taken yet, assigning every pending
        one (the end of a batch pass)."""
        self._mature(everything=True)
        return self.take_finals()

    def take_finals(self) -> list[Assignment]:
        """Return the final assignments made since the last call (refine)."""
        finals, self.finals = self.finals, []
        return finals

    def restore(self, item: StoryInput, story_id: str, copy_group: str | None) -> None:
        """Remember an article assigned earlier (a restarted stream reading its open
        stories back from the index), in any order, so later articles join its story."""
        if item.time and (self.now is None or item.time > self.now):
            self.now = item.time
        if item.doc_id in self.member_of:
            return
        vector, entity_vector = self.vectors(item)
        self._join(
            item,
            story_id,
            copy_group or item.doc_id,
            vector,
            entity_vector,
            signature(item.body_normalized),
        )
        self.touched.discard(story_id)

    def _join(
        self,
        item: StoryInput,
        story_id: str,
        group: str,
        vector: dict[str, float],
        entity_vector: dict[str, float],
        sig: np.ndarray | None,
    ) -> Assignment:
        story = self.stories.get(story_id)
        if story is None:
            story = self.stories[story_id] = Story(story_id, item.title, item.time, item.time)
        elif item.doc_id == story_id:  # restored out of order: the first article's title
            story.title = item.title
        story.add(item, vector, entity_vector)
        if group != item.doc_id:
            story.copies += 1
        for term in (*vector, *entity_vector):
            self.postings.setdefault(term, set()).add(story_id)
        self.member_of[item.doc_id] = story_id
        if sig is not None:
            self.signatures[item.doc_id] = (sig, _Copyable(item.time, group, story_id))
            self.lsh.insert(item.doc_id, self._minhash(sig), check_duplication=False)
        elif (key := _exact_key(item)) is not None:
            self.exact.setdefault(key, item.doc_id)
            self.signatures[item.doc_id] = (None, _Copyable(item.time, group, story_id, key))
        self.touched.add(story_id)
        return Assignment(item.doc_id, story_id, group if group != item.doc_id else None, group)

    def _minhash(self, sig: np.ndarray) -> MinHash:
        return MinHash(num_perm=NUM_PERM, seed=1, hashvalues=sig.astype(np.uint64), scheme=SCHEME)

    def _exact_original(self, item: StoryInput) -> _Copyable | None:
        """Return the open article a short body (and its title) repeats exactly."""
        key = _exact_key(item)
        first = self.exact.get(key) if key is not None else None
        return self.signatures[first][1] if first is not None else None

    def _original_of(self, sig: np.ndarray) -> _Copyable | None:
        best: tuple[float, str] | None = None
        for key in self.lsh.query(self._minhash(sig)):
            other, _ = self.signatures[key]
            similarity = float(np.mean(other == sig))
            if similarity >= self.copy_threshold and (best is None or similarity > best[0]):
                best = (similarity, key)
        return self.signatures[best[1]][1] if best else None

    def _best_story(
        self,
        item: StoryInput,
        vector: dict[str, float],
        entity_vector: dict[str, float],
        short: bool,
        leaving: str | None = None,
    ) -> str:
        """Return the open story most similar to the article, at least the threshold, else
        its own id; ``leaving``: the story it is in, scored without it."""
        candidates: set[str] = set()
        for term in (*heapq.nlargest(20, vector, key=vector.__getitem__), *entity_vector):
            candidates |= self.postings.get(term, set())
        if leaving is not None:
            candidates.add(leaving)
        best, best_score = item.doc_id, self.short_threshold if short else self.threshold
        text_weight = 1.0 - self.entity_weight if entity_vector else 1.0
        for story_id in sorted(candidates):
            story = self.stories.get(story_id)
            if story is None or not self._open(story, item.time):
                continue
            text_norm, entity_norm = story.vector_norms()
            # the story it is leaving: without it and the copies that wait to follow it
            times = (1 + self.waiting_copies[item.doc_id]) if story_id == leaving else 0
            score = text_weight * _cosine_without(vector, story.terms, text_norm, times)
            if entity_vector and self.entity_weight:
                score += self.entity_weight * _cosine_without(
                    entity_vector, story.entity_terms, entity_norm, times
                )
            if score >= best_score:
                best, best_score = story_id, score
        return best

    def _open(self, story: Story, time: datetime | None) -> bool:
        if time is None or story.last_seen is None:
            return True
        return abs(time - story.last_seen) <= self.window

    def _close_old(self) -> None:
        """Forget stories whose last article is more than a window older than the newest."""
        assert self.now is not None
        self.closed_at = self.now
        try:  # a pending article (refine) may still join a story up to a window before it
            horizon = self.now - self.window * (2 if self.refine else 1)
        except OverflowError:  # a page dated near the year 1: nothing is older
            return
        closed = [
            s for s in self.stories.values() if s.last_seen is not None and s.last_seen < horizon
        ]
        if not closed:
            return
        ids = {s.story_id for s in closed}
        for story in closed:
            if story.story_id in self.touched:  # its last change is not written yet
                self.touched.discard(story.story_id)
                self.closed.append(story.document())
            del self.stories[story.story_id]
            for member in story.members:
                self.member_of.pop(member, None)
                self.final_story.pop(member, None)
                if member in self.signatures:
                    sig, copyable = self.signatures.pop(member)
                    if sig is not None:
                        self.lsh.remove(member)
                    elif copyable.exact_key and self.exact.get(copyable.exact_key) == member:
                        del self.exact[copyable.exact_key]
        for term in list(self.postings):
            self.postings[term] -= ids
            if not self.postings[term]:
                del self.postings[term]

    def take_touched(self) -> list[dict[str, Any]]:
        """Return the documents of the stories changed since the last call (closed ones
        too, as they were when they closed)."""
        touched, self.touched = self.touched, set()
        closed, self.closed = self.closed, []
        return closed + [self.stories[s].document() for s in sorted(touched) if s in self.stories]

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Accept a state an older version pickled (a stream resumed from a savepoint)."""
        defaults = {
            "refine": False,
            "idf_frozen": False,
            "pending": deque(),
            "final_story": {},
            "finals": [],
            "waiting_copies": Counter(),
            "exact": {},
        }
        self.__dict__.update({**defaults, **state})
        for story in self.stories.values():
            if isinstance(story.members, list):  # members had no times
                story.members = dict.fromkeys(story.members)

    def open_stories(self) -> int:
        return len(self.stories)


def clusterer_of(settings: StoriesSettings, batch: bool = False) -> StoryClusterer:
    """Return an empty clusterer with ``settings``' window and thresholds; ``batch``: for
    a pass that sees every article (refined when ``settings.refine``)."""
    return StoryClusterer(
        timedelta(hours=settings.window_hours),
        settings.threshold,
        settings.entity_weight,
        settings.copy_threshold,
        settings.short_threshold,
        refine=batch and settings.refine,
    )


def cluster(items: list[StoryInput], clusterer: StoryClusterer | None = None) -> list[Assignment]:
    """Return each item's assignment, in input order; items are seen by time, then input
    order (undated ones first). A refining clusterer counts IDF over all items first."""
    clusterer = clusterer or StoryClusterer()
    order = sorted(range(len(items)), key=lambda i: (_sort_time(items[i].time), i))
    if clusterer.refine:
        clusterer.warm(items)
    first: dict[int, Assignment] = {}
    for index in order:
        first[index] = clusterer.assign(items[index])
    if not clusterer.refine:
        return [first[i] for i in range(len(items))]
    final = {a.doc_id: a for a in clusterer.finish()}
    return [final.get(items[i].doc_id, first[i]) for i in range(len(items))]


def _sort_time(time: datetime | None) -> float:
    return (time - EPOCH).total_seconds() if time else 0.0


def story_input(article: Article, doc_id: str | None = None) -> StoryInput:
    """Return what clustering needs of a normalised (and tagged) article."""
    return StoryInput(
        doc_id=doc_id or article.doc_id,
        time=article.story_time,
        title_normalized=article.title_normalized,
        body_normalized=article.body_normalized,
        source=article.source,
        title=article.title,
        entities=article.entities,
        countries=tuple(article.countries),
        language=article.language,
    )
