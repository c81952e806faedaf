"""Lexical analysis: stems meet across affixes and spellings, questions lose their stopwords."""

from __future__ import annotations

import pytest

from qa.lexical import index_terms, lexical_text, query_terms, stem


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("الاعتراضات", "اعتراض"),  # article + plural suffix
        ("للمعلمين", "المعلم"),  # preposition + article + plural
        ("أوروبا", "اوروبا"),  # hamza spelling
        ("مَدْرَسَة", "مدرسة"),  # vowelled and plain
    ],
)
def test_variants_share_a_term(one, other):
    assert index_terms(one) == index_terms(other)


def test_diacritics_do_not_split_words():
    # Regex \\w does not match Arabic combining marks: removing them first keeps one word.
    assert len(index_terms("عمُّه وأخوه")) == 2


def test_questions_drop_stopwords_and_repeats():
    terms = query_terms("ما هي عاصمة فرنسا؟ وما عاصمة فرنسا")
    assert terms == list(dict.fromkeys(terms))
    assert stem("ما") not in terms and stem("هي") not in terms
    assert index_terms("عاصمة")[0] in terms


def test_english_and_digits_pass_through():
    assert query_terms("What is the capital of France in 2020?") == ["capital", "france", "2020"]
    assert index_terms("٢٠٢٠") == ["2020"]


def test_query_and_index_agree_on_the_text_they_store():
    text = "التقى رئيس الائتلاف الوطني بالمبعوث الأمريكي في بروكسل"
    stored = set(lexical_text(text).split())
    assert set(query_terms("من التقى المبعوث الأمريكي في بروكسل؟")) <= stored


def test_a_question_of_stopwords_only_makes_no_query():
    assert query_terms("ما هو؟") == []
