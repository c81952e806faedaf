"""A lexical bridge from Latin-script questions to Arabic-script passages: consonant skeletons.

Names cross scripts by sound: Jeffrey and جيفري, Rayburn and ريبورن, Pedersen and بيدرسن,
Mutasim and المعتصم share their consonants once both are folded into one small alphabet (b/p,
f/v, the emphatic and plain t, s, d, z, the g and j sounds) with vowels, weak letters, hamza and
ain left out. The names of a question in Latin script are folded so and looked up among the
folded words of the index's documents as written; the lexical terms (stems) of the Arabic words
found are searched with BM25 beside the dense ranking. Numbers, written the same in both
scripts, pass as they are. Measured in docs/evaluation.md ("The cross-script lexical bridge",
"Names as written").
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterable

from qa.index import IndexView
from qa.lexical import STOPWORDS, stem
from qa.textnorm import clean_text, has_arabic, normalize_arabic

# Latin letters (and digraphs, tried first) to consonant classes; vowels and y/w fold away.
_LATIN_DIGRAPHS = {"sh": "S", "ch": "S", "th": "T", "ph": "F", "kh": "K", "gh": "J", "dh": "D", "ck": "K"}
_LATIN = {
    "b": "B", "p": "B", "t": "T", "d": "D", "j": "J", "g": "J", "h": "H", "k": "K", "c": "K",
    "q": "K", "x": "KS", "r": "R", "z": "Z", "s": "S", "f": "F", "v": "F", "l": "L", "m": "M",
    "n": "N",
}  # fmt: skip
# Arabic letters (after the lexical normalization: alef and yeh forms folded) to the same classes.
_ARABIC = {
    "ب": "B", "پ": "B", "ت": "T", "ط": "T", "ث": "T", "د": "D", "ض": "D", "ذ": "D", "ج": "J",
    "غ": "J", "ح": "H", "ه": "H", "خ": "K", "ك": "K", "ق": "K", "ر": "R", "ز": "Z", "ظ": "Z",
    "س": "S", "ص": "S", "ش": "S", "ف": "F", "ڤ": "F", "ل": "L", "م": "M", "ن": "N",
}  # fmt: skip
_LATIN_WORD = re.compile(r"[A-Za-z]+|\d+")
_ARABIC_WORD = re.compile(r"\w+")
MIN_SKELETON = 3  # shorter ones (Assad: SD) match too many words


def latin_skeleton(word: str) -> str:
    word = word.casefold()
    classes, position = [], 0
    while position < len(word):
        pair = word[position : position + 2]
        if pair in _LATIN_DIGRAPHS:
            classes.append(_LATIN_DIGRAPHS[pair])
            position += 2
            continue
        classes.append(_LATIN.get(word[position], ""))
        position += 1
    return _collapsed("".join(classes))


def arabic_skeleton(term: str) -> str:
    if term.startswith("ال") and len(term) > 4:
        term = term[2:]
    return _collapsed("".join(_ARABIC.get(letter, "") for letter in term))


def _collapsed(skeleton: str) -> str:
    """Doubled consonants once (Jeffrey, shadda)."""
    return re.sub(r"(.)\1+", r"\1", skeleton)


class Bridge:
    """Words of one vocabulary by skeleton: its Arabic words for questions in Latin script, its
    Latin words for questions in Arabic script. Built from the words as written in the documents
    (the stemmer cuts names: أوتزن → اوتز); `terms_for` returns the lexical terms of the words it
    finds. Given the index's stemmed terms instead (`stemmed=True`), it returns them as they are.
    """

    def __init__(self, words: Iterable[str] = (), *, stemmed: bool = False) -> None:
        self.stemmed = stemmed
        self._arabic: dict[str, list[str]] = {}
        self._latin: dict[str, list[str]] = {}
        self.add(words)

    def add(self, words: Iterable[str]) -> None:
        for word in words:
            if has_arabic(word):
                # A word as written may carry a conjunction or preposition (وبيدرسن, لجيفري).
                forms = [word] if self.stemmed else _without_clitics(word)
                skeletons, found = {arabic_skeleton(form) for form in forms}, self._arabic
            elif word.isascii() and word.isalpha():
                skeletons, found = {latin_skeleton(word)}, self._latin
            else:
                continue
            for skeleton in skeletons:
                if len(skeleton) >= MIN_SKELETON:
                    found.setdefault(skeleton, []).append(word)

    def terms_for(self, question: str) -> list[str]:
        """Lexical terms in the other script that sound like the question's names, and its numbers."""
        words = self._latin_words_for(question) if has_arabic(question) else self._arabic_words_for(question)
        if not self.stemmed:
            words = [stem(word) for word in words]
        return list(dict.fromkeys(words))

    def _latin_words_for(self, question: str) -> list[str]:
        # The words as written (normalized, not stemmed): the stemmer cuts names (لندن → لند).
        words = _ARABIC_WORD.findall(normalize_arabic(clean_text(question)))
        found: list[str] = [word for word in words if word.isdigit() and len(word) >= 2]
        for word in words:
            skeleton = arabic_skeleton(word)
            if has_arabic(word) and word not in STOPWORDS and len(skeleton) >= MIN_SKELETON:
                found += self._latin.get(skeleton, [])
        return found

    def _arabic_words_for(self, question: str) -> list[str]:
        found: list[str] = []
        for word in _names_and_numbers(question):
            if word.isdigit():
                if len(word) >= 2:
                    found.append(word)
                continue
            word = word.casefold()
            if word in STOPWORDS:
                continue
            skeleton = latin_skeleton(word)
            if len(skeleton) < MIN_SKELETON:
                continue
            # Stems may have lost letters of the name; words as written have all of them.
            for variant in _stemmed_variants(skeleton) if self.stemmed else [skeleton]:
                found += self._arabic.get(variant, [])
        return found


class IndexBridge:
    """The bridge of one index, kept up to date as documents are written: after a write, only
    the words recorded since the last look are read and added. An index that keeps no words
    (older, on a read-only mount) gets a bridge over its stemmed terms, read again after a write
    at most every `STEMMED_REFRESH_S` since reading them costs O(vocabulary)."""

    STEMMED_REFRESH_S = 10.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._bridge: Bridge | None = None
        self._version: int | None = None
        self._marker = 0
        self._refreshed_at = 0.0

    def for_view(self, view: IndexView) -> Bridge:
        with self._lock:
            bridge = self._bridge
            if bridge is not None and view.version == self._version:
                return bridge
            if bridge is None or not bridge.stemmed:
                found = view.written_words(self._marker)
                if found is not None:
                    words, self._marker = found
                    if bridge is None:
                        bridge = self._bridge = Bridge(words)
                    else:
                        bridge.add(words)
                    self._version = view.version
                    return bridge
            now = time.monotonic()
            if bridge is None or now - self._refreshed_at > self.STEMMED_REFRESH_S:
                bridge = self._bridge = Bridge(view.lexical_terms(), stemmed=True)
                self._refreshed_at, self._version = now, view.version
            return bridge


def _names_and_numbers(question: str) -> list[str]:
    """The words worth sounding out: in a question written with capitals, its capitalized words
    but the first (names; "meet" or "office" would only find Arabic words by chance); in one
    typed all in lower case, every word."""
    words = _LATIN_WORD.findall(question)
    if not any(character.isupper() for character in question):
        return words
    return [w for n, w in enumerate(words) if w.isdigit() or (n > 0 and w[0].isupper())]


# Letters the Arabic stemmer takes for affixes and cuts off names: a leading preposition or
# conjunction (بيدرسن → يدرس) and a trailing pronoun or plural ending (ريبورن → ريبور).
_PREFIX_CLASSES = "BLKF"
_SUFFIX_CLASSES = "NHTK"


_CLITICS = (re.compile("^[وف]"), re.compile("^[بلك]"), re.compile("^ال|^ل"))


def _without_clitics(word: str) -> list[str]:
    """The word, and the word without each leading clitic in turn: a conjunction (و ف), a
    preposition (ب ل ك), the article (وبيدرسن → بيدرسن, للمعارضة → معارضة). The word itself
    stays: a name may begin with the same letters (لندن)."""
    forms = [word]
    for clitic in _CLITICS:
        bare = clitic.sub("", forms[-1])
        if bare != forms[-1] and len(bare) >= 3:
            forms.append(bare)
    return forms


def _stemmed_variants(skeleton: str) -> list[str]:
    """The skeleton, and the skeletons the stemmed Arabic spelling of the same name may have."""
    variants = [skeleton]
    cut_end = skeleton[-1] in _SUFFIX_CLASSES
    cut_start = skeleton[0] in _PREFIX_CLASSES
    if cut_end:
        variants.append(skeleton[:-1])
    if cut_start:
        variants.append(skeleton[1:])
    if cut_start and cut_end:
        variants.append(skeleton[1:-1])
    return [variant for variant in variants if len(variant) >= MIN_SKELETON]
