"""Which documents a question may be answered from: one filter for every surface (JSON body,
query string, CLI options, web form, MCP), parsed and checked here once.

Keys combine with AND; the values of one list key with OR ("sources": ["Reuters", "AFP"] is
either). A date bound leaves out documents that have no published date. `published_after` is
inclusive (on or after), `published_before` exclusive, so [2019-01-01, 2019-02-01) is January.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from qa.errors import QuestionError
from qa.metadata import parse_lang, parse_published
from qa.textnorm import clean_text

FILTER_KEYS = ("documents", "sources", "tags", "lang", "published_after", "published_before")
MAX_FILTER_VALUES = 1000
FILTER_HELP = (
    "Only passages of documents that match every given key: documents (ids), sources, tags (any "
    "of the listed values), lang (a language code, or a list), published_after (ISO date or "
    "datetime, inclusive), published_before (exclusive). Documents without a date are left out "
    "by a date bound."
)


@dataclass(frozen=True)
class SearchFilter:
    documents: tuple[str, ...] | None = None
    sources: tuple[str, ...] | None = None
    tags: tuple[str, ...] | None = None
    langs: tuple[str, ...] | None = None
    published_after: str | None = None  # normalized as `qa.metadata` stores dates
    published_before: str | None = None

    @property
    def is_empty(self) -> bool:
        return self == SearchFilter()


def _strings(value: object, key: str) -> tuple[str, ...]:
    """A list of non-empty strings (one string counts as a list of one)."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(item, str) for item in items):
        raise QuestionError(f"filter.{key} must be a list of strings")
    if not items:
        raise QuestionError(f"filter.{key} is an empty list, which no document matches; leave the key out")
    if len(items) > MAX_FILTER_VALUES:
        raise QuestionError(f"filter.{key} has {len(items)} values; the limit is {MAX_FILTER_VALUES}")
    if any(not clean_text(item) for item in items):
        raise QuestionError(f"filter.{key} holds a value with nothing visible in it")
    return tuple(dict.fromkeys(item.strip() for item in items))


def _bound(value: object, key: str) -> str | None:
    if value == "":  # in JSON, an empty string is a mistake; leave the key out (or null) for no bound
        raise QuestionError(f"filter.{key} is an empty string, not a date; leave the key out for no bound")
    try:
        return parse_published(value, field=f"filter.{key}")
    except ValueError as exc:
        raise QuestionError(str(exc)) from None


def parse_filter(value: object) -> SearchFilter | None:
    """A SearchFilter from a JSON object (None, {} and all-null keys: no filter), or
    QuestionError (HTTP 400) naming the key and what is wrong with it."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise QuestionError(f"filter must be an object with the keys {', '.join(FILTER_KEYS)}")
    unknown = sorted(str(key) for key in value if key not in FILTER_KEYS)
    if unknown:
        raise QuestionError(
            f"unknown filter key{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
            f"the keys are {', '.join(FILTER_KEYS)}"
        )
    lists = {
        key: _strings(value[key], key)
        for key in ("documents", "sources", "tags", "lang")
        if value.get(key) is not None
    }
    langs = lists.get("lang")
    if langs is not None:
        try:
            langs = tuple(dict.fromkeys(str(parse_lang(code)) for code in langs))
        except ValueError as exc:
            raise QuestionError(f"filter.{exc}") from None
    # An empty date range is a filter that matches nothing, as a source nobody uses is.
    after = _bound(value.get("published_after"), "published_after")
    before = _bound(value.get("published_before"), "published_before")
    parsed = SearchFilter(
        documents=lists.get("documents"),
        sources=lists.get("sources"),
        tags=lists.get("tags"),
        langs=langs,
        published_after=after,
        published_before=before,
    )
    return None if parsed.is_empty else parsed


def filter_from_options(
    *,
    documents: object = None,
    sources: object = None,
    tags: object = None,
    lang: object = None,
    published_after: object = None,
    published_before: object = None,
) -> SearchFilter | None:
    """The filter of flat options (query parameters, CLI options, form fields): empty ones unset.
    Comma-separated strings are not split: ids and source names may hold commas; repeat the
    option instead."""

    def given(item: object) -> object:
        if item in (None, "", [], ()):
            return None
        if isinstance(item, list | tuple):
            kept = [entry for entry in item if entry not in (None, "")]
            return kept or None
        return item

    raw = {
        "documents": given(documents),
        "sources": given(sources),
        "tags": given(tags),
        "lang": given(lang),
        "published_after": given(published_after),
        "published_before": given(published_before),
    }
    return parse_filter({key: item for key, item in raw.items() if item is not None})
