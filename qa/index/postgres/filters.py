"""A search filter (`qa.filters.SearchFilter`) as one SQL condition on the documents table `d`,
shared by the dense and the lexical search so both leave out the same documents.

Every value goes as a named parameter (never into the SQL text); the names start with
`filter_`, apart from those of the queries the condition goes into.
"""

from __future__ import annotations

from typing import Any

from psycopg import sql

from qa.filters import SearchFilter

# Key of the filter, its condition; each holds one parameter named after the key.
_CONDITIONS: tuple[tuple[str, str], ...] = (
    ("documents", "d.id = ANY({})"),
    ("sources", "d.source = ANY({})"),
    ("tags", "d.tags && {}::text[]"),  # overlap: any of the listed tags
    # "ar" also matches the regional "ar-sa" a Word file may give (one placeholder, used twice).
    ("langs", "(d.lang = ANY({0}) OR split_part(d.lang, '-', 1) = ANY({0}))"),
    # ISO text that sorts as time (qa.metadata); NULL (no date) fails both, as the filter says.
    ("published_after", "d.published >= {}"),
    ("published_before", "d.published < {}"),
)


def filter_condition(within: SearchFilter | None) -> tuple[sql.Composable, dict[str, Any]]:
    """The condition that keeps documents matching `within` ("true" without a filter), and its
    parameters."""
    conditions: list[sql.Composable] = []
    parameters: dict[str, Any] = {}
    for key, template in _CONDITIONS:
        value = getattr(within, key, None) if within is not None else None
        if value is None:
            continue
        name = f"filter_{key}"
        placeholder = sql.Placeholder(name)
        conditions.append(sql.SQL(template).format(placeholder, placeholder))
        parameters[name] = list(value) if isinstance(value, tuple) else value
    if not conditions:
        return sql.SQL("true"), {}
    return sql.SQL(" AND ").join(conditions), parameters
