"""A lexical bridge from Latin-script questions to Arabic-script passages: consonant skeletons.

Names cross scripts by sound: Jeffrey and جيفري, Rayburn and ريبورن, Pedersen and بيدرسن,
Mutasim and المعتصم share their consonants once both are folded into one small alphabet (b/p,
f/v, the emphatic and plain t, s, d, z, the g and j sounds) with vowels, weak letters, hamza and
ain left out. The names of a question in Latin script are folded so and looked up among the
folded terms of the index's own lexical vocabulary; the Arabic terms found are searched with
BM25 beside the dense ranking. Numbers, written the same in both scripts, pass as they are.
Measured in docs/evaluation.md ("The cross-script lexical bridge").
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from qa.lexical import STOPWORDS
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
    """The terms of one vocabulary by skeleton: its Arabic terms for questions in Latin script,
    its Latin terms for questions in Arabic script."""

    def __init__(self, terms: Iterable[str]) -> None:
        self._arabic: dict[str, list[str]] = {}
        self._latin: dict[str, list[str]] = {}
        for term in terms:
            if has_arabic(term):
                skeleton, found = arabic_skeleton(term), self._arabic
            elif term.isascii() and term.isalpha():
                skeleton, found = latin_skeleton(term), self._latin
            else:
                continue
            if len(skeleton) >= MIN_SKELETON:
                found.setdefault(skeleton, []).append(term)

    def terms_for(self, question: str) -> list[str]:
        """Index terms in the other script that sound like the question's names, and its numbers."""
        if has_arabic(question):
            return self._latin_terms_for(question)
        return self._arabic_terms_for(question)

    def _latin_terms_for(self, question: str) -> list[str]:
        # The words as written (normalized, not stemmed): the stemmer cuts names (لندن → لند).
        words = _ARABIC_WORD.findall(normalize_arabic(clean_text(question)))
        found: list[str] = [word for word in words if word.isdigit() and len(word) >= 2]
        for word in words:
            skeleton = arabic_skeleton(word)
            if has_arabic(word) and word not in STOPWORDS and len(skeleton) >= MIN_SKELETON:
                found += self._latin.get(skeleton, [])
        return list(dict.fromkeys(found))

    def _arabic_terms_for(self, question: str) -> list[str]:
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
            for variant in _stemmed_variants(skeleton):
                found += self._arabic.get(variant, [])
        return list(dict.fromkeys(found))


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
