"""Split documents into sentences and passages, keeping character offsets into the original text.

Sentences end at `.` `!` `?` `؟` `؛` `…` (with any closing quotes or brackets) followed by space,
and at line breaks. Passages are runs of whole sentences within a token budget, overlapping by a
sentence so an answer that straddles a boundary still lands whole in one passage. Page
boilerplate (related-article lists, comment prompts, share buttons) is left out of passages.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass

SENTENCE_END = re.compile(r"""[.!?؟؛…]+["'”’»)\]]*(?=\s|$)""")
LINE = re.compile(r"[^\n]+")
WORD = re.compile(r"\S+")

# Whole lines that are page furniture rather than article text.
_BOILERPLATE_LINES = {
    "مقالات ذات صلة",
    "مواضيع ذات صلة",
    "أخبار ذات صلة",
    "اقرأ أيضا",
    "اقرأ أيضاً",
    "اقرأ ايضا",
    "اترك تعليقاً",
    "اترك تعليقا",
    "أضف تعليق",
    "أضف تعليقاً",
    "زر الذهاب إلى الأعلى",
    "تخطى إلى المحتوى",
    "شارك",
    "شارك هذا",
    "شارك المقال",
    "مشاركة",
    "related articles",
    "related posts",
    "read more",
    "read also",
    "leave a comment",
    "leave a reply",
    "skip to content",
    "share",
    "share this",
    "back to top",
}
_BOILERPLATE_PREFIXES = (
    "لن يتم نشر عنوان بريدك الإلكتروني",
    "your email address will not be published",
)
# After one of these markers, short lines are headlines of other articles.
_RELATED_MARKERS = {
    "مقالات ذات صلة",
    "مواضيع ذات صلة",
    "أخبار ذات صلة",
    "اقرأ أيضا",
    "اقرأ أيضاً",
    "اقرأ ايضا",
    "related articles",
    "related posts",
    "read also",
}
# A line this long (in words) after a related-articles marker is article text again.
_BODY_LINE_WORDS = 25


@dataclass(frozen=True)
class ChunkingSettings:
    max_tokens: int = 160
    overlap_sentences: int = 1
    drop_boilerplate: bool = True

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Span:
    start: int
    end: int


@dataclass(frozen=True)
class Passage:
    start: int
    end: int
    sentences: tuple[Span, ...]


def _line_key(line: str) -> str:
    return " ".join(line.strip().strip(":：-–—|•*#/").split()).casefold()


def is_boilerplate(line: str) -> bool:
    key = _line_key(line)
    return not key or key in _BOILERPLATE_LINES or key.startswith(_BOILERPLATE_PREFIXES)


def content_lines(text: str, drop_boilerplate: bool = True) -> list[Span]:
    """The lines of a document that carry article text."""
    lines: list[Span] = []
    in_related_list = False
    for match in LINE.finditer(text):
        line = match.group()
        if not line.strip():
            continue
        if drop_boilerplate:
            key = _line_key(line)
            if key in _RELATED_MARKERS:
                in_related_list = True
                continue
            if in_related_list and len(line.split()) < _BODY_LINE_WORDS:
                continue
            in_related_list = False
            if is_boilerplate(line):
                continue
        lines.append(Span(match.start(), match.end()))
    return lines


def _trimmed(text: str, start: int, end: int) -> Span | None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return Span(start, end) if end > start else None


def split_sentences(text: str, drop_boilerplate: bool = True) -> list[Span]:
    """Sentence spans over the content lines of `text`, whitespace trimmed."""
    sentences: list[Span] = []
    for line in content_lines(text, drop_boilerplate):
        cursor = line.start
        for end in SENTENCE_END.finditer(text, line.start, line.end):
            span = _trimmed(text, cursor, end.end())
            if span:
                sentences.append(span)
            cursor = end.end()
        span = _trimmed(text, cursor, line.end)
        if span:
            sentences.append(span)
    return sentences


def _split_long_sentence(
    text: str, sentence: Span, count_tokens: Callable[[str], int], max_tokens: int
) -> list[Span]:
    """Cut a sentence longer than the budget into word windows that fit."""
    pieces: list[Span] = []
    start = None
    last_end = sentence.start
    for word in WORD.finditer(text, sentence.start, sentence.end):
        if start is None:
            start = word.start()
        elif count_tokens(text[start : word.end()]) > max_tokens:
            pieces.append(Span(start, last_end))
            start = word.start()
        last_end = word.end()
    if start is not None:
        pieces.append(Span(start, last_end))
    return pieces


def chunk_text(
    text: str, count_tokens: Callable[[str], int], settings: ChunkingSettings = ChunkingSettings()
) -> list[Passage]:
    """Group sentences into passages of at most `max_tokens` tokens, overlapping by whole sentences.

    `count_tokens` counts a text's tokens without the model's prompt and special tokens.
    """
    sentences: list[Span] = []
    sizes: list[int] = []
    for sentence in split_sentences(text, settings.drop_boilerplate):
        size = count_tokens(text[sentence.start : sentence.end])
        if size <= settings.max_tokens:
            sentences.append(sentence)
            sizes.append(size)
            continue
        for piece in _split_long_sentence(text, sentence, count_tokens, settings.max_tokens):
            sentences.append(piece)
            sizes.append(count_tokens(text[piece.start : piece.end]))

    passages: list[Passage] = []
    first = 0
    while first < len(sentences):
        last = first
        total = sizes[first]
        while last + 1 < len(sentences) and total + sizes[last + 1] <= settings.max_tokens:
            last += 1
            total += sizes[last]
        members = tuple(sentences[first : last + 1])
        passages.append(Passage(members[0].start, members[-1].end, members))
        if last + 1 >= len(sentences):
            break
        # Step back by the overlap, but always move forward by at least one sentence.
        first = max(last + 1 - settings.overlap_sentences, first + 1)
    return passages
