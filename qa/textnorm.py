"""Text normalization: pure functions, run on every passage and every query, so all tables are built once.

Library decision: plain `str.translate` tables instead of PyPI `pyarabic`. Checked on pyarabic 0.6.15:
  - `normalize_hamza` (default method) turns every hamza form into a bare ء and آ into ءء, so "قرآن"
    becomes "قرءءن" and "أحمد" becomes "ءحمد": that hurts matching instead of helping it;
  - `normalize_alef` also maps ى to ا (we want ى → ي) and does not cover the Persian forms;
  - `strip_tashkeel` does nothing unless `is_vocalized` says the whole text is vocalized, so one
    diacritic inside otherwise plain text ("أحمد 2020 أَ") is kept, and it ignores U+0670 and the
    Quranic marks;
  - each helper is a separate pass of `str.replace`/`re.sub`, slower than one translate table.
So the library does not do exactly these things, and the whole job is a few lines of tables here.
"""

from __future__ import annotations

import re
import unicodedata

TATWEEL = "\u0640"

# Arabic diacritics: harakat, shadda, sukun, hamza/madda marks (U+064B–U+065F), superscript alef
# (U+0670) and the Quranic annotation marks (U+06D6–U+06ED).
_DIACRITICS = [*range(0x064B, 0x0660), 0x0670, *range(0x06D6, 0x06EE)]


def _control_and_format_code_points() -> list[int]:
    """Code points of category Cc/Cf that are not whitespace.

    Whitespace controls (tab, newline, CR, U+001C–U+001F, U+0085) are kept so that the whitespace
    folding turns them into a space: deleting a tab would glue two words together. Cc/Cf only exist
    in planes 0, 1 and 14, so scanning those (about 20 ms once) finds them all for this Python's
    Unicode version without hard-coding a list that would go stale.
    """
    planes = (range(0x20000), range(0xE0000, 0xE1000))
    return [
        cp
        for plane in planes
        for cp in plane
        if unicodedata.category(chr(cp)) in ("Cc", "Cf") and not chr(cp).isspace()
    ]


def _character_class(code_points: list[int]) -> str:
    """A regex character class matching exactly `code_points`, written as ranges."""
    parts: list[str] = []
    ordered = sorted(set(code_points))
    start = previous = ordered[0]
    for cp in [*ordered[1:], -1]:
        if cp == previous + 1:
            previous = cp
            continue
        first, last = re.escape(chr(start)), re.escape(chr(previous))
        parts.append(first if start == previous else f"{first}-{last}")
        start = previous = cp
    return "[" + "".join(parts) + "]"


_INVISIBLE = [*_control_and_format_code_points(), ord(TATWEEL)]
# A regex removal is about twice as fast as str.translate for clean_text, which has nothing to map.
_INVISIBLE_RE = re.compile(_character_class(_INVISIBLE) + "+")

_ARABIC_FOLDS = {
    "أ": "ا",
    "إ": "ا",
    "آ": "ا",
    "ٱ": "ا",
    "ة": "ه",
    "ى": "ي",
    "ؤ": "و",
    "ئ": "ي",
    "ک": "ك",  # Persian/Urdu keheh
    "ی": "ي",  # Persian/Urdu farsi yeh
    **{chr(0x0660 + digit): str(digit) for digit in range(10)},  # Arabic-Indic digits
    **{chr(0x06F0 + digit): str(digit) for digit in range(10)},  # Extended (Persian) digits
}
# One table does deletions and folds in a single pass. Deleting before the whitespace folding also
# means a lone diacritic between two spaces cannot leave a double space behind.
_LEXICAL_TABLE: dict[int, str | None] = {cp: None for cp in [*_INVISIBLE, *_DIACRITICS]}
_LEXICAL_TABLE.update(str.maketrans(_ARABIC_FOLDS))

_WORD_RE = re.compile(r"\w+")
_ARABIC_RE = re.compile("[\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff\ufb50-\ufdff\ufe70-\ufeff]")


def clean_text(text: str) -> str:
    """Text for embedding and display-insensitive matching.

    NFC, no tatweel, no control/format characters (zero-width characters, bidi marks, BOM, NUL),
    every run of whitespace (newlines included) folded to one space, stripped.
    """
    text = _INVISIBLE_RE.sub("", unicodedata.normalize("NFC", text))
    # str.split() splits on exactly the characters regex \s matches, and is faster than re.sub.
    return " ".join(text.split())


def normalize_arabic(text: str) -> str:
    """Text for the lexical index and lexical queries: clean_text plus spelling-variant folding.

    Drops diacritics; folds أ إ آ ٱ → ا, ة → ه, ى → ي, ؤ → و, ئ → ي, ک → ك, ی → ي and Arabic-Indic
    digits → ASCII; casefolds. A bare hamza ء is left alone.
    """
    text = unicodedata.normalize("NFC", text).translate(_LEXICAL_TABLE)
    return " ".join(text.split()).casefold()


def tokens(text: str) -> list[str]:
    """The word tokens of the normalized text, for building lexical queries."""
    return _WORD_RE.findall(normalize_arabic(text))


def has_arabic(text: str) -> bool:
    """Whether the text contains a character from the Arabic blocks (letters, Arabic digits, marks)."""
    return _ARABIC_RE.search(text) is not None
