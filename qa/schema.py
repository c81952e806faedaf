"""The answer shapes shared by the JSON API, the CLI's --json output and the evaluation."""

from __future__ import annotations

import msgspec


class DocumentRef(msgspec.Struct):
    """The document a passage comes from, with what a citation needs."""

    id: str
    title: str
    source: str
    published: str | None = None  # ISO date, or UTC datetime ending in Z
    lang: str | None = None
    url: str | None = None
    author: str | None = None
    tags: list[str] = msgspec.field(default_factory=list)


class AnswerSpan(msgspec.Struct):
    """The sentence of a passage that best answers the question; offsets are into the document."""

    text: str
    start: int
    end: int


class PassageHit(msgspec.Struct):
    rank: int
    score: float
    text: str
    document: DocumentRef
    start: int
    end: int
    answer: AnswerSpan


class AskResponse(msgspec.Struct):
    question: str
    passages: list[PassageHit]
    took_ms: float
    mode: str
