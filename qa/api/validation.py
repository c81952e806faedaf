"""What the HTTP shells check before the search service sees a request.

Questions are checked by `SearchService` itself (`qa.search.validate_question`), for every surface
alike; this module only states that rule in the OpenAPI schema (`VISIBLE_CHARACTER`). JSON bodies
are checked against their types strictly: Litestar converts leniently ("5" becomes 5), while the
OpenAPI schema promises clients exactly the JSON types it lists.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from litestar import Request
from litestar.exceptions import ValidationException

from qa.textnorm import TATWEEL


def strict_json_body(kind: type) -> Callable[[Request[Any, Any, Any]], Awaitable[None]]:
    """A `before_request` hook that refuses a JSON body whose values are not of their JSON types."""

    async def check(request: Request[Any, Any, Any]) -> None:
        try:
            msgspec.json.decode(await request.body(), type=kind)
        except msgspec.ValidationError as exc:
            detail = f"Validation failed for {request.method} {request.url.path}"
            raise ValidationException(detail=detail, extra=[{"message": str(exc)}]) from None
        except msgspec.DecodeError:
            return  # malformed JSON: Litestar's own extractor answers 400 with its message

    return check


def refuse_unknown_parameters(known: tuple[str, ...]) -> Callable[[Request[Any, Any, Any]], Awaitable[None]]:
    """A `before_request` hook that refuses query parameters the endpoint does not read: a
    misspelt filter (`?source=` for `?sources=`) would otherwise widen the search in silence."""

    async def check(request: Request[Any, Any, Any]) -> None:
        unknown = sorted(set(request.query_params) - set(known))
        if unknown:
            raise ValidationException(
                detail=f"unknown query parameter{'s' if len(unknown) > 1 else ''} "
                f"{', '.join(map(repr, unknown))}; this endpoint reads {', '.join(known)}"
            )

    return check


def _invisible_ranges() -> list[tuple[int, int]]:
    """Code point ranges that `clean_text` removes or folds away: whitespace, control and format
    characters (categories Cc, Cf, which only exist in planes 0, 1 and 14) and tatweel."""

    def removed(cp: int) -> bool:
        char = chr(cp)
        return char.isspace() or char == TATWEEL or unicodedata.category(char) in ("Cc", "Cf")

    ranges: list[tuple[int, int]] = []
    for plane in (range(0x20000), range(0xE0000, 0xE1000)):
        for cp in plane:
            if not removed(cp):
                continue
            if ranges and ranges[-1][1] == cp - 1:
                ranges[-1] = (ranges[-1][0], cp)
            else:
                ranges.append((cp, cp))
    return ranges


def _escape(cp: int) -> str:
    # \uXXXX reads the same in ECMA-262 (what OpenAPI names) and Python regexes; astral code
    # points are written as themselves, which both read as one character in a Unicode pattern.
    return f"\\u{cp:04x}" if cp <= 0xFFFF else chr(cp)


# The OpenAPI `pattern` of a question: at least one character that cleaning keeps. A pattern
# matches anywhere in the string, so this one class says "something visible somewhere".
VISIBLE_CHARACTER = (
    "[^"
    + "".join(_escape(a) if a == b else f"{_escape(a)}-{_escape(b)}" for a, b in _invisible_ranges())
    + "]"
)
