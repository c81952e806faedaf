"""The answer shapes shared by the JSON API, the CLI's --json output and the evaluation."""

from __future__ import annotations

import msgspec


class DocumentRef(msgspec.Struct):
    id: str
    title: str
    source: str


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
