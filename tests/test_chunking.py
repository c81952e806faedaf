"""Sentences and passages: offsets into the original text, budgets, overlap, boilerplate."""

from __future__ import annotations

import itertools

import pytest

from qa.chunking import ChunkingSettings, chunk_text, content_lines, split_sentences
from tests.helpers import SEEDS


def word_count(text: str) -> int:
    return len(text.split())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("One. Two! Three? Four", ["One.", "Two!", "Three?", "Four"]),
        ("هل التقى؟ نعم التقى. ثم غادر؛ وانتهى", ["هل التقى؟", "نعم التقى.", "ثم غادر؛", "وانتهى"]),
        ('He said "stop." Then left.', ['He said "stop."', "Then left."]),
        ("Version 2.5 is out", ["Version 2.5 is out"]),
        ("line one\nline two", ["line one", "line two"]),
    ],
)
def test_sentences_split_at_arabic_and_latin_punctuation_and_line_breaks(text, expected):
    assert [text[s.start : s.end] for s in split_sentences(text)] == expected


def test_every_passage_is_the_exact_slice_of_its_document():
    text = "  First sentence here.  Second one follows!\n\nThird paragraph? Yes.\n"
    passages = chunk_text(text, word_count, ChunkingSettings(max_tokens=5, overlap_sentences=1))
    assert passages
    for passage in passages:
        assert text[passage.start : passage.end].strip() == text[passage.start : passage.end]
        for sentence in passage.sentences:
            assert passage.start <= sentence.start < sentence.end <= passage.end


def test_passages_respect_the_budget_and_overlap_by_one_sentence():
    text = " ".join(f"Sentence number {i} is here." for i in range(12))
    passages = chunk_text(text, word_count, ChunkingSettings(max_tokens=16, overlap_sentences=1))
    assert all(word_count(text[p.start : p.end]) <= 16 for p in passages)
    for first, second in itertools.pairwise(passages):
        assert second.sentences[0] == first.sentences[-1]
    covered = {s for p in passages for s in p.sentences}
    assert len(covered) == 12


def test_a_sentence_longer_than_the_budget_is_cut_into_windows():
    text = " ".join(f"w{i}" for i in range(50)) + "."
    passages = chunk_text(text, word_count, ChunkingSettings(max_tokens=10, overlap_sentences=0))
    assert all(word_count(text[p.start : p.end]) <= 10 for p in passages)
    assert " ".join(text[p.start : p.end] for p in passages) == text


def test_related_articles_and_comment_prompts_are_left_out():
    text = (
        "عنوان الخبر\n\nالتقى الرئيس بالمبعوث في بروكسل وبحث معه التصعيد.\n\nمقالات ذات صلة\n\n"
        "إيران تعلن تواصلها مع قادة العمليات\n\nاترك تعليقاً\n\n"
        "لن يتم نشر عنوان بريدك الإلكتروني. الحقول الإلزامية مشار إليها بـ *\n\nزر الذهاب إلى الأعلى"
    )
    kept = [text[s.start : s.end] for s in content_lines(text)]
    assert kept == ["عنوان الخبر", "التقى الرئيس بالمبعوث في بروكسل وبحث معه التصعيد."]
    assert len(content_lines(text, drop_boilerplate=False)) == 7


@pytest.mark.parametrize("path", sorted(SEEDS.glob("*.txt")), ids=lambda p: p.stem[:3])
def test_seed_passages_are_exact_slices(path):
    text = path.read_text(encoding="utf-8")
    passages = chunk_text(text, word_count, ChunkingSettings(max_tokens=60))
    assert len(passages) >= 2
    assert all(text[p.start : p.end] == text[p.start : p.end].strip() for p in passages)
