"""Which language a text is written in, for documents that do not say (`lang`).

py3langid (a maintained, numpy-only port of langid.py, its model inside the wheel) classifies
97 languages in about 0.1 ms per text once loaded; the model loads on first use (~0.6 s).
"""

from __future__ import annotations

from functools import lru_cache

# Enough text to classify reliably; long articles cost no more than this.
_SAMPLE_CHARS = 2000
# Below this probability the guess is left out: a headline-sized English text ("Quokkas visited
# Aleppo today.") came out Finnish at 0.34, while article-length texts score above 0.9.
MIN_PROBABILITY = 0.5


@lru_cache(maxsize=1)
def _identifier():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def detect_language(text: str) -> str | None:
    """The ISO 639-1 code of the text's language, or None when it has no letters to judge by
    or the guess is unsure (short texts): no language is better than a wrong one for a filter."""
    sample = text[:_SAMPLE_CHARS]
    if not any(char.isalpha() for char in sample):
        return None
    code, probability = _identifier().classify(sample)
    return str(code) if probability >= MIN_PROBABILITY else None
