"""Text normalization: what the lexical index and the embedder see."""

from __future__ import annotations

import pytest

from qa.textnorm import clean_text, has_arabic, normalize_arabic, tokens


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("أَحْمَدُ", "احمد"),  # diacritics dropped, hamza-on-alef folded
        ("مدرسة", "مدرسه"),  # taa marbuta
        ("مستشفى", "مستشفي"),  # alef maqsura
        ("ـــالسلام", "السلام"),  # tatweel
        ("٢٠١٩", "2019"),  # Arabic-Indic digits
        ("۱۳۹۸", "1398"),  # Persian digits
        ("إسلام آمن ٱلله", "اسلام امن الله"),
        ("مسؤول شاطئ", "مسوول شاطي"),
        ("کتاب فارسی", "كتاب فارسي"),  # Persian keheh and yeh
        ("الرحمٰن", "الرحمن"),  # superscript alef
        ("سماء ءامن", "سماء ءامن"),  # a bare hamza is left alone
        ("بيروت\u200f", "بيروت"),  # RLM
        ("لا\u200dم", "لام"),  # ZWJ
        ("Hello WORLD Straße", "hello world strasse"),
        ("a \u064e b", "a b"),  # a lone diacritic leaves no double space
    ],
)
def test_normalize_arabic(text, expected):
    assert normalize_arabic(text) == expected


@pytest.mark.parametrize("text", ["أَحْمَدُ فِي الْمَدْرَسَةِ ٢٠١٩", "Straße  مستشفى\u200f"])
def test_normalize_arabic_is_idempotent(text):
    once = normalize_arabic(text)
    assert normalize_arabic(once) == once


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("  one \t two\n\nthree  ", "one two three"),
        ("a\x00b", "ab"),
        ("\ufeffbom", "bom"),
        ("x\u200by\u200ez\u202a", "xyz"),  # zero-width space, LRM, LRE
        ("ـــالسلام", "السلام"),
        ("ا\u0653", "آ"),  # NFC composes alef + madda
        ("\u00a0nbsp\u00a0", "nbsp"),
    ],
)
def test_clean_text(text, expected):
    assert clean_text(text) == expected


def test_clean_text_keeps_diacritics_and_letters():
    assert clean_text("أَحْمَدُ مدرسة") == "أَحْمَدُ مدرسة"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("مَن التقى المبعوث الأمريكي؟", ["من", "التقي", "المبعوث", "الامريكي"]),
        ("Jeffrey, in Brussels (2019)!", ["jeffrey", "in", "brussels", "2019"]),
        ("عام ٢٠١٩م", ["عام", "2019م"]),
        ("", []),
    ],
)
def test_tokens(text, expected):
    assert tokens(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("who met Jeffrey", False),
        ("من التقى جيفري", True),
        ("mixed سوريا text", True),
        ("\ufefb", True),  # presentation form (lam-alef ligature)
        ("", False),
    ],
)
def test_has_arabic(text, expected):
    assert has_arabic(text) is expected
