"""Readers that turn the bytes of one file format into a document's text, title and metadata.

One small module per format (html, pdf, docx); `qa.documents` picks one by the file's suffix and
applies the checks every document gets (id, size, empty text, language). A reader raises
`DocumentError` with a one-line reason a user can act on, never another exception.

Metadata read from a file is taken leniently: a malformed date or an over-long author in a
file's properties drops that one value, because the text is still worth indexing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from qa.errors import DocumentError
from qa.metadata import MAX_TAG_CHARS, MAX_TAGS, TAG_SEPARATORS, Metadata, parse_metadata


@dataclass(frozen=True)
class Extracted:
    """What a reader found: the document text (passages point into it), a title if the file
    names one, and the metadata it declares."""

    text: str
    title: str | None = None
    meta: Metadata = field(default_factory=Metadata)


# Keyword lists are comma- or semicolon-separated in practice (Arabic documents use "،" and "؛").


def split_tags(values: list[str] | tuple[str, ...]) -> list[str]:
    """Tags from keyword fields such as "a, b; c", in order, without empties or over-long ones."""
    tags: list[str] = []
    for value in values:
        for tag in TAG_SEPARATORS.split(value):
            tag = " ".join(tag.split())
            if tag and len(tag) <= MAX_TAG_CHARS:
                tags.append(tag)
    return list(dict.fromkeys(tags))[:MAX_TAGS]


def lenient_metadata(
    *,
    published: object = None,
    lang: object = None,
    url: object = None,
    author: object = None,
    tags: list[str] | tuple[str, ...] = (),
) -> Metadata:
    """Metadata from a file's own properties, each value normalized by `parse_metadata` and
    dropped alone when it is malformed."""
    values: dict[str, object] = {}
    for name, value in (("published", published), ("lang", lang), ("url", url), ("author", author)):
        try:
            values[name] = getattr(parse_metadata(**{name: value}), name)
        except (DocumentError, ValueError):
            values[name] = None
    return Metadata(tags=tuple(split_tags(tags)), **values)  # type: ignore[arg-type]
